using ProgrammableFilm.Bench.Faults;

// The fault script's harness (bench/faults.sh): a real farm of processes on PostgreSQL and RabbitMQ, one fresh job per
// fault, and a table of what each fault cost: jobs lost, frames missing, attempts billed twice, time to recover.
Settings settings;
try
{
    settings = Settings.Parse(args);
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

await using var run = new FaultRun(settings);
var results = await run.RunAsync(stop.Token);
Console.Write(Report.Markdown(settings, run, results));
return results.Count > 0 && results.All(r => r.Passed) ? 0 : 1;
