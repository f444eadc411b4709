namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// Runs work items over a fixed number of threads with a static partition: worker <c>t</c> of <c>T</c> gets items
/// <c>[t*n/T, (t+1)*n/T)</c>. Every item is computed by the same code whatever thread runs it, so results do not depend
/// on the thread count (no reduction is ever split across threads).
/// </summary>
internal sealed class Parallelism
{
    private readonly ParallelOptions _options;

    public Parallelism(int threads)
    {
        Threads = threads <= 0 ? Environment.ProcessorCount : threads;
        _options = new ParallelOptions { MaxDegreeOfParallelism = Threads };
    }

    public int Threads { get; }

    public void For<TJob>(int count, TJob job)
        where TJob : IRangeJob
    {
        if (count <= 0)
        {
            return;
        }

        int workers = Math.Min(Threads, count);
        if (workers == 1)
        {
            job.Execute(0, count);
            return;
        }

        Parallel.For(0, workers, _options, t => job.Execute((int)((long)t * count / workers), (int)((long)(t + 1) * count / workers)));
    }
}

/// <summary>A job over a range of independent items.</summary>
internal interface IRangeJob
{
    void Execute(int start, int end);
}
