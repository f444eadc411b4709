using ProgrammableFilm.Worker;
using ProgrammableFilm.Worker.Energy;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The worker's energy readers on recorded device outputs (<c>TestData/energy</c>), and the estimate path this
/// machine takes (no GPU, no readable RAPL). No services needed.
/// </summary>
public class EnergyMeterTests
{
    private static readonly string Data = Path.Combine(TestEnvironment.RepositoryRoot, "tests", "ProgrammableFilm.IntegrationTests", "TestData", "energy");

    private static string Recorded(string name) => File.ReadAllText(Path.Combine(Data, name));

    [Fact]
    public void Nvidia_smi_lines_give_each_gpus_power_and_energy_counter_in_joules()
    {
        var readings = EnergyReadings.ParseNvidiaSmi(Recorded("nvidia-smi-8xh100.csv"));

        Assert.Equal(8, readings.Count);
        Assert.Equal(new GpuReading(2, 698.51, 1_204_455_667.788), readings[2]);
        Assert.Equal(Enumerable.Range(0, 8), readings.Select(r => r.Index));
    }

    [Fact]
    public void Unsupported_fields_read_as_absent_and_warning_lines_are_skipped()
    {
        Assert.Equal([new GpuReading(0, 243.17, null), new GpuReading(1, 251.60, null)], EnergyReadings.ParseNvidiaSmi(Recorded("nvidia-smi-power-only.csv")));
        Assert.Equal([new GpuReading(0, null, null)], EnergyReadings.ParseNvidiaSmi(Recorded("nvidia-smi-unsupported.csv")));
    }

    [Fact]
    public void The_energy_counter_gives_the_joules_between_two_reads_of_the_gpus_in_use()
    {
        var outputs = new Queue<string>([Recorded("nvidia-smi-8xh100.csv"), Recorded("nvidia-smi-8xh100.csv"), Recorded("nvidia-smi-8xh100-later.csv")]);
        using var all = NvidiaSmiMeter.Open(() => outputs.Dequeue(), visibleDevices: null)!;
        var start = all.ReadJoules();
        var end = all.ReadJoules();

        Assert.Equal("nvidia-smi energy counter", all.Source);
        Assert.Equal(19_049.6, end!.Value - start!.Value, 3);

        outputs = new Queue<string>([Recorded("nvidia-smi-8xh100.csv"), Recorded("nvidia-smi-8xh100-later.csv")]);
        using var two = NvidiaSmiMeter.Open(() => outputs.Dequeue(), visibleDevices: "2,3")!;
        Assert.Equal(6_994.0 + 7_012.3, two.ReadJoules()!.Value, 3);
    }

    [Fact]
    public void A_board_without_a_counter_is_metered_by_its_power_and_one_without_either_is_estimated()
    {
        using var power = NvidiaSmiMeter.Open(() => Recorded("nvidia-smi-power-only.csv"), visibleDevices: null);
        Assert.Equal("nvidia-smi power samples", power!.Source);
        Assert.Equal(0, power.ReadJoules());

        Assert.Null(NvidiaSmiMeter.Open(() => Recorded("nvidia-smi-unsupported.csv"), visibleDevices: null));
        Assert.Null(NvidiaSmiMeter.Open(() => null, visibleDevices: null));
    }

    [Fact]
    public void Rapl_counts_the_package_domains_once_through_a_wrap_and_credits_the_worker_its_share_of_the_cores()
    {
        var root = TestEnvironment.CreateTemporaryFolder("pfilm-powercap");
        try
        {
            CopyTree(Path.Combine(Data, "powercap"), root);
            var meter = RaplMeter.Open(root, coresHeld: 2, coresPresent: 4)!;
            Assert.Equal(0, meter.ReadJoules());

            File.WriteAllText(Path.Combine(root, "intel-rapl:0", "energy_uj"), "123461789012\n"); // +5 J
            File.WriteAllText(Path.Combine(root, "intel-rapl:1", "energy_uj"), "1000000\n"); // wrapped: +4.32885 J
            File.WriteAllText(Path.Combine(root, "intel-rapl:0:0", "energy_uj"), "99999999999\n"); // a sub-domain: not added

            Assert.Equal("rapl", meter.Source);
            Assert.Equal((5 + 4.32885) / 2, meter.ReadJoules()!.Value, 9);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Rapl_that_is_absent_or_unreadable_gives_no_meter()
    {
        Assert.Null(RaplMeter.Open("/nonexistent/powercap", 1, 1));
        var root = TestEnvironment.CreateTemporaryFolder("pfilm-powercap-empty");
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "intel-rapl:0"));
            Assert.Null(RaplMeter.Open(root, 1, 1));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Energy_counted_while_two_attempts_render_is_shared_between_them_and_idle_energy_billed_to_none()
    {
        var meter = new ScriptedMeter(0, 10, 30, 50, 80);
        var account = new EnergyAccount(meter);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();

        account.Start(a); // reads 0
        account.Start(b); // 10: a alone
        var first = account.Finish(a); // 30: 20 shared
        var second = account.Finish(b); // 50: 20 for b alone
        account.Sample(); // 80: idle

        Assert.Equal(20.0, first);
        Assert.Equal(30.0, second);
    }

    [Fact]
    public void Without_a_readable_counter_this_machine_estimates_and_says_so()
    {
        // This machine (and CI) has no GPU and no readable /sys/class/powercap: energy is estimated by the coordinator
        // from the SKU's rated watts (MoneyFarmTests checks the ledger rows it writes).
        Assert.False(File.Exists("/sys/class/powercap/intel-rapl:0/energy_uj") && RaplMeter.Open("/sys/class/powercap", 1, 1) is not null);
        Assert.Null(EnergyMeterChoice.Open(new WorkerOptions { DeviceSku = "cpu" }));
        Assert.Null(EnergyMeterChoice.Open(new WorkerOptions { DeviceSku = "cpu", EnergyMeter = "none" }));
        var account = new EnergyAccount(null);
        var attempt = Guid.NewGuid();
        account.Start(attempt);

        Assert.Null(account.Finish(attempt));
        Assert.Null(account.Source);
        Assert.Throws<ArgumentException>(() => EnergyMeterChoice.Open(new WorkerOptions { EnergyMeter = "guess" }));
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(directory.Replace(from, to, StringComparison.Ordinal));
        }

        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
        }
    }

    private sealed class ScriptedMeter(params double[] readings) : IEnergyMeter
    {
        private int _next;

        public string Source => "scripted";

        public double? ReadJoules() => readings[_next++];
    }
}
