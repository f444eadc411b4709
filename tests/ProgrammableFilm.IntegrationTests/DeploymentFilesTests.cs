using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Runs <c>deploy/check.sh</c> once (helm lint and template with the default and the GPU-pools values, yamllint,
/// docker-compose config, dockerfilelint; it installs the tools it lacks), then holds the rendered objects and the
/// compose file to the processes the tests start by hand: same entry points, same environment variable names.
/// </summary>
public sealed class DeploymentFilesFixture : IAsyncLifetime
{
    public string Output { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-deploy-check");

    public List<YamlMappingNode> Default { get; private set; } = [];

    public List<YamlMappingNode> Gpu { get; private set; } = [];

    public YamlMappingNode Compose { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var (exitCode, output, error) = await TestEnvironment.RunAsync("bash", [Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "check.sh"), Output], timeout: TimeSpan.FromMinutes(8));
        Assert.True(exitCode == 0, $"deploy/check.sh failed ({exitCode}):\n{output}\n{error}");
        Default = Documents(Path.Combine(Output, "default.yaml"));
        Gpu = Documents(Path.Combine(Output, "gpu.yaml"));
        Compose = Assert.Single(Documents(Path.Combine(Output, "compose.yaml")));
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Output, recursive: true);
        return Task.CompletedTask;
    }

    private static List<YamlMappingNode> Documents(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            stream.Load(reader);
        }

        return [.. stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>()];
    }
}

public sealed class DeploymentFilesTests(DeploymentFilesFixture files) : IClassFixture<DeploymentFilesFixture>
{
    /// <summary>Variables the hand-started farm (README, <see cref="ObservedFarmFixture"/>) gives each process.</summary>
    private static readonly string[] ApiVariables = ["Database__ConnectionString", "RabbitMq__Uri", "RabbitMq__Prefix", "Storage__Root"];

    private static readonly string[] WorkerVariables = ["RabbitMq__Uri", "RabbitMq__Prefix", "Storage__Root", "Worker__Id", "Worker__DeviceCount", "Worker__HttpUrls"];

    /// <summary>Set by the deployment files, read by code on another branch not merged yet (none now).</summary>
    private static readonly string[] ReadOnOtherBranches = [];

    public static TheoryData<string> Renders => new() { "default", "gpu" };

    [Theory]
    [MemberData(nameof(Renders))]
    public void Every_pool_has_a_worker_deployment_with_resources_probes_and_a_scaled_object_on_its_own_queue(string render)
    {
        var objects = Objects(render);
        var pools = objects.Where(o => Kind(o) == "Deployment" && Label(o, "app.kubernetes.io/component") == "worker").ToList();
        Assert.Equal(render == "gpu" ? ["cpu", "gpu-h100", "gpu-l4"] : ["cpu"], pools.Select(d => Label(d, "programmablefilm.io/pool")).Order(StringComparer.Ordinal));
        foreach (var deployment in pools)
        {
            var pool = Label(deployment, "programmablefilm.io/pool");
            var container = Assert.Single(Containers(deployment));
            var resources = (YamlMappingNode)container["resources"];
            Assert.True(resources.Children.ContainsKey("requests") && resources.Children.ContainsKey("limits"), $"{pool}: requests and limits");
            Assert.Equal("/health/live", Scalar(container, "livenessProbe", "httpGet", "path"));
            Assert.Equal("/health/ready", Scalar(container, "readinessProbe", "httpGet", "path"));
            Assert.Equal("/health/live", Scalar(container, "startupProbe", "httpGet", "path"));
            var env = Env(container);
            Assert.Equal(pool, env["Worker__Pool"]);
            Assert.All(WorkerVariables, name => Assert.True(env.ContainsKey(name), $"{pool}: {name}"));
            Assert.Equal("http://+:8081", env["Worker__HttpUrls"]);

            var gpu = pool.StartsWith("gpu", StringComparison.Ordinal);
            var limits = (YamlMappingNode)resources["limits"];
            Assert.Equal(gpu, limits.Children.ContainsKey("nvidia.com/gpu"));
            Assert.Contains(gpu ? "pfilm-worker-gpu:" : "pfilm-worker:", Scalar(container, "image"), StringComparison.Ordinal);
            if (gpu)
            {
                var spec = PodSpec(deployment);
                Assert.True(spec.Children.ContainsKey("nodeSelector") && spec.Children.ContainsKey("tolerations"), $"{pool}: node selector and tolerations");
                Assert.Contains(((YamlSequenceNode)spec["tolerations"]).Cast<YamlMappingNode>(), t => Scalar(t, "key") == "nvidia.com/gpu");
                Assert.Equal("torch", env["Worker__DiffusionEngine"]);
            }

            var scaled = Assert.Single(objects, o => Kind(o) == "ScaledObject" && Label(o, "programmablefilm.io/pool") == pool);
            Assert.Equal(Scalar(deployment, "metadata", "name"), Scalar(scaled, "spec", "scaleTargetRef", "name"));
            Assert.Equal("0", Scalar(scaled, "spec", "minReplicaCount"));
            var triggers = ((YamlSequenceNode)((YamlMappingNode)scaled["spec"])["triggers"]).Cast<YamlMappingNode>().ToList();
            var rabbit = Assert.Single(triggers, t => Scalar(t, "type") == "rabbitmq");
            Assert.Equal($"render-{pool}", Scalar(rabbit, "metadata", "queueName"));
            Assert.Single(objects, o => Kind(o) == "PodDisruptionBudget" && Label(o, "programmablefilm.io/pool") == pool);
        }

        // Each queue scaled on once: no two pools share a queue.
        Assert.Equal(pools.Count, objects.Where(o => Kind(o) == "ScaledObject").Select(o => Scalar(o, "metadata", "name")).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Renders))]
    public void Nothing_runs_as_root_and_root_file_systems_are_read_only(string render)
    {
        var workloads = Objects(render).Where(o => Kind(o) is "Deployment" or "Job").ToList();
        Assert.NotEmpty(workloads);
        foreach (var workload in workloads)
        {
            var name = Scalar(workload, "metadata", "name");
            var security = (YamlMappingNode)PodSpec(workload)["securityContext"];
            Assert.Equal("true", Scalar(security, "runAsNonRoot"));
            Assert.True(int.Parse(Scalar(security, "runAsUser"), System.Globalization.CultureInfo.InvariantCulture) > 0, name);
            foreach (var container in Containers(workload))
            {
                Assert.Equal("true", Scalar(container, "securityContext", "readOnlyRootFilesystem"));
                Assert.Equal("false", Scalar(container, "securityContext", "allowPrivilegeEscalation"));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Renders))]
    public void The_api_runs_the_migration_hook_first_and_has_its_service_autoscaler_budget_and_probes(string render)
    {
        var objects = Objects(render);
        var job = Assert.Single(objects, o => Kind(o) == "Job");
        Assert.Equal("pre-install,pre-upgrade", Scalar(job, "metadata", "annotations", "helm.sh/hook"));
        var migrate = Assert.Single(Containers(job));
        Assert.Equal(["migrate"], ((YamlSequenceNode)migrate["args"]).Select(a => a.ToString()));
        Assert.Contains("pfilm-api:", Scalar(migrate, "image"), StringComparison.Ordinal);

        var api = Assert.Single(objects, o => Kind(o) == "Deployment" && Label(o, "app.kubernetes.io/component") == "api");
        var container = Assert.Single(Containers(api));
        Assert.Equal(Scalar(container, "image"), Scalar(migrate, "image"));
        Assert.Equal("/health/ready", Scalar(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/health/live", Scalar(container, "livenessProbe", "httpGet", "path"));
        var env = Env(container);
        Assert.All(ApiVariables, name => Assert.True(env.ContainsKey(name), name));
        Assert.Equal(Env(migrate).Keys.Order(StringComparer.Ordinal), env.Keys.Where(k => k != "ASPNETCORE_URLS").Order(StringComparer.Ordinal));

        // Every pool's price reaches the coordinator, which bills.
        foreach (var sku in Objects(render).Where(o => Kind(o) == "Deployment" && Label(o, "app.kubernetes.io/component") == "worker").Select(d => Env(Assert.Single(Containers(d)))["Worker__DeviceSku"]))
        {
            Assert.True(env.ContainsKey($"Pricing__Devices__{sku}__DollarsPerHour"), sku);
        }

        Assert.Single(objects, o => Kind(o) == "Service");
        Assert.Single(objects, o => Kind(o) == "HorizontalPodAutoscaler");
        Assert.Single(objects, o => Kind(o) == "PodDisruptionBudget" && Label(o, "app.kubernetes.io/component") == "api");
        Assert.Equal(render == "gpu", objects.Any(o => Kind(o) == "Ingress"));
        Assert.Equal(2, objects.Count(o => Kind(o) == "Secret"));
        Assert.Equal("ReadWriteMany", Assert.Single(objects, o => Kind(o) == "PersistentVolumeClaim")["spec"]["accessModes"][0].ToString());
    }

    [Fact]
    public void Compose_runs_the_same_entry_points_with_the_same_environment_as_the_hand_started_farm()
    {
        var services = (YamlMappingNode)files.Compose["services"];
        var names = services.Children.Keys.Select(k => k.ToString()).ToHashSet(StringComparer.Ordinal);
        foreach (var expected in new[] { "postgres", "rabbitmq", "migrate", "api", "worker-1", "worker-2", "prometheus", "grafana" })
        {
            Assert.Contains(expected, names);
        }

        var apiDockerfile = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "docker", "api.Dockerfile"));
        var workerDockerfile = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "docker", "worker.Dockerfile"));
        var gpuDockerfile = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "docker", "worker-gpu.Dockerfile"));

        // The tests start bin/.../ProgrammableFilm.Api.dll and ProgrammableFilm.Worker.dll with dotnet; so do the images.
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"ProgrammableFilm.Api.dll\"]", apiDockerfile, StringComparison.Ordinal);
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"ProgrammableFilm.Worker.dll\"]", workerDockerfile, StringComparison.Ordinal);
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"ProgrammableFilm.Worker.dll\"]", gpuDockerfile, StringComparison.Ordinal);
        Assert.Contains("ffmpeg", workerDockerfile, StringComparison.Ordinal);
        Assert.Contains("models/pf-scene-v3.safetensors", workerDockerfile, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^FROM nvidia/cuda:\S+-runtime-", gpuDockerfile);
        Assert.Contains("-p:TorchSharpBackend=cuda", gpuDockerfile, StringComparison.Ordinal);
        Assert.All(new[] { apiDockerfile, workerDockerfile, gpuDockerfile }, text => Assert.Matches(@"(?m)^USER 1654$", text));

        var migrate = (YamlMappingNode)services["migrate"];
        Assert.Equal(["migrate"], ((YamlSequenceNode)migrate["command"]).Select(c => c.ToString()));
        Assert.Equal("deploy/docker/api.Dockerfile", Scalar(migrate, "build", "dockerfile"));
        Assert.Equal(Scalar(migrate, "image"), Scalar(services, "api", "image"));

        var api = ComposeEnv(services, "api");
        Assert.All(ApiVariables, name => Assert.True(api.ContainsKey(name), $"api: {name}"));
        Assert.Equal("http://+:8080", api["ASPNETCORE_URLS"]);
        Assert.Contains("Host=postgres;", api["Database__ConnectionString"], StringComparison.Ordinal);
        Assert.Contains("@rabbitmq:5672", api["RabbitMq__Uri"], StringComparison.Ordinal);
        Assert.Equal(ApiVariables.Select(v => api[v]), ApiVariables.Select(v => ComposeEnv(services, "migrate")[v]));
        foreach (var worker in new[] { "worker-1", "worker-2" })
        {
            var env = ComposeEnv(services, worker);
            Assert.All(WorkerVariables, name => Assert.True(env.ContainsKey(name), $"{worker}: {name}"));
            Assert.Equal(worker, env["Worker__Id"]);
            Assert.Equal(api["RabbitMq__Uri"], env["RabbitMq__Uri"]);
            Assert.Equal(api["Storage__Root"], env["Storage__Root"]);
            Assert.False(env.ContainsKey("Database__ConnectionString"), "only the coordinator connects to PostgreSQL");
        }

        // The README's hand-started farm exports the same names.
        var readme = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "README.md"));
        var exported = Regex.Matches(readme, @"(?m)^export (\w+)=").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(exported);
        Assert.All(exported, name => Assert.True(api.ContainsKey(name), $"README exports {name}; compose's api lacks it"));

        // Prometheus scrapes the services where they listen.
        var prometheus = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "prometheus", "prometheus.compose.yml"));
        Assert.Contains("\"api:8080\"", prometheus, StringComparison.Ordinal);
        Assert.Contains("\"worker-1:8081\", \"worker-2:8081\"", prometheus, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_variable_the_deployment_files_set_is_documented_and_read_by_the_code()
    {
        var documented = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "configuration.md"));
        var sources = Directory.EnumerateFiles(Path.Combine(TestEnvironment.RepositoryRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText).ToList();
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var render in new[] { "default", "gpu" })
        {
            foreach (var workload in Objects(render).Where(o => Kind(o) is "Deployment" or "Job"))
            {
                foreach (var container in Containers(workload))
                {
                    names.UnionWith(Env(container).Keys);
                }
            }
        }

        var services = (YamlMappingNode)files.Compose["services"];
        foreach (var service in new[] { "migrate", "api", "worker-1", "worker-2" })
        {
            names.UnionWith(ComposeEnv(services, service).Keys);
        }

        foreach (var dockerfile in Directory.EnumerateFiles(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "docker")))
        {
            names.UnionWith(Regex.Matches(File.ReadAllText(dockerfile), @"\b([A-Z][A-Za-z]+__[A-Za-z_]+)=").Select(m => m.Groups[1].Value));
        }

        Assert.Contains("Coordinator__LeaseDuration", names);
        foreach (var name in names.Where(n => n.Contains("__", StringComparison.Ordinal)))
        {
            var pattern = Regex.Replace(name, @"^Pricing__Devices__[^_]+__", "Pricing__Devices__<sku>__");
            Assert.True(documented.Contains($"`{pattern}`", StringComparison.Ordinal) || documented.Contains($"`{pattern}`,", StringComparison.Ordinal), $"{name} is not in docs/configuration.md");
            if (ReadOnOtherBranches.Contains(name))
            {
                continue;
            }

            var parts = pattern.Split("__");
            var read = parts[0] == "Pricing"
                ? sources.Any(s => s.Contains("\"Pricing:Devices\"", StringComparison.Ordinal) && s.Contains($"\"{parts[^1]}\"", StringComparison.Ordinal))
                : sources.Any(s => s.Contains($"\"{string.Join(':', parts)}\"", StringComparison.Ordinal)
                    || (s.Contains($"GetSection(\"{parts[0]}\")", StringComparison.Ordinal) && s.Contains($"\"{parts[^1]}\"", StringComparison.Ordinal)));
            Assert.True(read, $"{name} is set by a deployment file but no code reads {string.Join(':', parts)}");
        }
    }

    [Fact]
    public void The_dashboard_and_alert_rules_use_only_metrics_the_farm_exports()
    {
        var known = FarmMetricNames.Coordinator.Concat(FarmMetricNames.Worker).ToHashSet(StringComparer.Ordinal);
        var dashboard = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "grafana", "dashboards", "programmablefilm.json"));
        var alerts = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "prometheus", "alerts.yml"));
        var used = Regex.Matches(dashboard + alerts + string.Join('\n', files.Gpu.Select(o => o.ToString())), @"\bpfilm_[a-z_]+\b").Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(used);
        Assert.All(used, name => Assert.True(known.Contains(name), $"{name} is used but not exported"));
        foreach (var panel in new[] { "Queue depth", "Throughput", "Dispatch latency", "Spend per hour", "GPU-hours per pool", "Error queue" })
        {
            Assert.Contains(panel, dashboard, StringComparison.Ordinal);
        }

        foreach (var alert in new[] { "PfilmWorkersLost", "PfilmErrorQueueNotEmpty", "PfilmBudgetBurn" })
        {
            Assert.Contains($"alert: {alert}", alerts, StringComparison.Ordinal);
        }
    }

    private List<YamlMappingNode> Objects(string render) => render == "gpu" ? files.Gpu : files.Default;

    private static string Kind(YamlMappingNode node) => node.Children.TryGetValue("kind", out var kind) ? kind.ToString() : "";

    private static string Label(YamlMappingNode node, string label) =>
        ((YamlMappingNode)node["metadata"]).Children.TryGetValue("labels", out var labels) && ((YamlMappingNode)labels).Children.TryGetValue(label, out var value) ? value.ToString() : "";

    private static YamlMappingNode PodSpec(YamlMappingNode workload) => (YamlMappingNode)workload["spec"]["template"]["spec"];

    private static IEnumerable<YamlMappingNode> Containers(YamlMappingNode workload) => ((YamlSequenceNode)PodSpec(workload)["containers"]).Cast<YamlMappingNode>();

    /// <summary>A container's environment: literal values, or <c>secret:NAME/KEY</c> and <c>field:PATH</c> for references.</summary>
    private static Dictionary<string, string> Env(YamlMappingNode container) =>
        ((YamlSequenceNode)container["env"]).Cast<YamlMappingNode>().ToDictionary(
            e => e["name"].ToString(),
            e => e.Children.TryGetValue("value", out var value) ? value.ToString()
                : e["valueFrom"] is YamlMappingNode from && from.Children.TryGetValue("secretKeyRef", out var secret) ? $"secret:{secret["name"]}/{secret["key"]}"
                : $"field:{e["valueFrom"]["fieldRef"]["fieldPath"]}",
            StringComparer.Ordinal);

    private static Dictionary<string, string> ComposeEnv(YamlMappingNode services, string service) =>
        ((YamlMappingNode)services[service]["environment"]).Children.ToDictionary(e => e.Key.ToString(), e => e.Value.ToString(), StringComparer.Ordinal);

    private static string Scalar(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            node = ((YamlMappingNode)node)[key];
        }

        return node.ToString();
    }
}
