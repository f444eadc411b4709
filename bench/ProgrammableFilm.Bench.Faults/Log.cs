namespace ProgrammableFilm.Bench.Faults;

/// <summary>Progress goes to standard error, so that standard output is only the report.</summary>
public static class Log
{
    public static void Line(string message) => Console.Error.WriteLine($"[faults {DateTime.UtcNow:HH:mm:ss.f}] {message}");
}
