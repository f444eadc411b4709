using System.Net;
using System.Net.Http.Json;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.IntegrationTests;

public class JobListTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_projects_jobs_are_listed_newest_first_a_page_at_a_time()
    {
        var first = await _worker.SubmitAsync("it-list");
        var second = await _worker.SubmitAsync("it-list");
        var third = await _worker.SubmitAsync("it-list");
        await _worker.SubmitAsync("it-list-other");

        var page = await farm.Http.GetFromJsonAsync<JobPage>("/api/projects/it-list/jobs?limit=2", SpecJson.Options);
        var rest = await farm.Http.GetFromJsonAsync<JobPage>($"/api/projects/it-list/jobs?limit=2&offset={page!.Next}", SpecJson.Options);
        using var tooMany = await farm.Http.GetAsync("/api/projects/it-list/jobs?limit=1000");

        Assert.Equal([third, second], page.Jobs.Select(j => j.Id));
        Assert.Equal((3, (int?)2), (page.Total, page.Next));
        Assert.Equal([first], rest!.Jobs.Select(j => j.Id));
        Assert.Null(rest.Next);
        Assert.All(page.Jobs, j => Assert.Equal("Queued", j.State));
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal("application/problem+json", tooMany.Content.Headers.ContentType!.MediaType);
    }
}
