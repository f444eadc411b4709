using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.Playwright;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Takes;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The takes page in Chromium against a real farm: a seed sweep's takes side by side with their keyframes, players,
/// signals and cost as the API has them; a director approves one and rejects another from the page.
/// </summary>
public class TakesPageTests(DashboardFixture farm) : IClassFixture<DashboardFixture>
{
    private const string Project = "dash-takes";

    private const string SweepYaml = """
        project: dash-takes
        shots:
          - name: harbour
            prompt: a yellow boat sailing left to right on a blue sea
            duration: 1
            fps: 12
            width: 96
            height: 64
            engine: procedural
            keyframeInterval: 6
            variants:
              - seed: 11
              - seed: 12
              - seed: 13
        """;

    private readonly ConcurrentQueue<string> _problems = new();

    [Fact]
    public async Task The_takes_page_shows_each_take_side_by_side_and_approving_and_rejecting_there_is_what_the_api_records()
    {
        var job = await SubmitAndWaitAsync();
        var takes = await TakesAsync(job.Shots[0].Id);
        Assert.Equal(3, takes.Takes.Count);

        var page = await farm.NewPageAsync(_problems);
        // From the job page, as a director finds the comparison: the shot's "compare takes" link.
        await page.GotoAsync($"/#/jobs/{job.Id}");
        await page.WaitForSelectorAsync($"body[data-loaded='/jobs/{job.Id}']");
        await page.Locator("a.takes-link").First.ClickAsync();
        await page.WaitForURLAsync($"**/#/takes/{job.Shots[0].Id}");
        await page.WaitForSelectorAsync("section.take[data-take='3']");
        await Assertions.Expect(page.Locator("#current-version")).ToHaveTextAsync("No take approved yet");

        foreach (var take in takes.Takes)
        {
            var section = page.Locator($"section.take[data-take='{take.Number}']");
            await Assertions.Expect(section.Locator(".review")).ToHaveTextAsync("pending");
            // Every keyframe of the take, decoded by the browser (a broken image has no natural width).
            var strip = section.Locator(".strip img");
            await Assertions.Expect(strip).ToHaveCountAsync(take.Keyframes.Count);
            for (var i = 0; i < take.Keyframes.Count; i++)
            {
                await page.WaitForFunctionAsync("img => img.complete && img.naturalWidth === 96", await strip.Nth(i).ElementHandleAsync());
            }

            var video = section.Locator("video");
            await Assertions.Expect(video).ToHaveAttributeAsync("src", new System.Text.RegularExpressions.Regex($"^{System.Text.RegularExpressions.Regex.Escape(take.VideoUrl!)}\\?access_token="));
            await page.WaitForFunctionAsync("v => v.readyState >= 1 && v.duration > 0.9", await video.ElementHandleAsync());
            await Assertions.Expect(section.Locator(".flicker")).ToHaveTextAsync(take.Metrics.Flicker!.Value.ToString("F3", CultureInfo.InvariantCulture));
            await Assertions.Expect(section.Locator(".seam")).ToHaveTextAsync(take.Metrics.SeamError!.Value.ToString("F3", CultureInfo.InvariantCulture));
            Assert.True(take.Cost > 0);
            Assert.Equal(take.Cost, ParseDollars(await section.Locator(".take-cost").InnerTextAsync()), 6);
        }

        // Distinct seeds render distinct takes: the first keyframes differ on the page, not only on disk.
        var firstKeyframes = await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll("section.take .strip img:first-child")].map(img => {
              const canvas = document.createElement("canvas");
              canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
              canvas.getContext("2d").drawImage(img, 0, 0);
              return canvas.toDataURL();
            })
            """);
        Assert.Equal(3, firstKeyframes.Distinct().Count());

        var approved = takes.Takes[1];
        await page.Locator($"button[data-approve='{approved.Id}']").ClickAsync();
        await Assertions.Expect(page.Locator("#current-version")).ToContainTextAsync($"= take {approved.Number}, approved by");
        await Assertions.Expect(page.Locator($"section.take.current[data-take='{approved.Number}']")).ToBeVisibleAsync();

        var rejected = takes.Takes[0];
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync("horizon tilts");
        await page.Locator($"button[data-reject='{rejected.Id}']").ClickAsync();
        await Assertions.Expect(page.Locator($"section.take[data-take='{rejected.Number}'] .review")).ToHaveTextAsync("rejected");
        await Assertions.Expect(page.Locator($"section.take[data-take='{rejected.Number}']")).ToContainTextAsync("horizon tilts");

        var recorded = await TakesAsync(job.Shots[0].Id);
        Assert.Equal(approved.Id, recorded.Current!.TakeId);
        Assert.Equal(1, recorded.Current.Version);
        Assert.Equal("approved", recorded.Takes.Single(t => t.Id == approved.Id).Review);
        var rejectedNow = recorded.Takes.Single(t => t.Id == rejected.Id);
        Assert.Equal("rejected", rejectedNow.Review);
        Assert.Equal("horizon tilts", rejectedNow.ReviewNote);
        Assert.Equal("pending", recorded.Takes.Single(t => t.Number == 3).Review);

        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-takes.png"), FullPage = true });
        Assert.True(_problems.IsEmpty, string.Join("\n", _problems));
    }

    private static decimal ParseDollars(string text)
    {
        Assert.StartsWith("$", text);
        return decimal.Parse(text[1..], NumberStyles.Number, CultureInfo.InvariantCulture);
    }

    private async Task<ShotTakes> TakesAsync(Guid shotId) =>
        (await farm.Http.GetFromJsonAsync<ShotTakes>($"/api/shots/{shotId}/takes", SpecJson.Options))!;

    private async Task<JobStatus> SubmitAndWaitAsync()
    {
        // A 96×64 procedural take once billed $0 in CI: every take needs a cost for the page to show.
        await FarmChecks.PriceProjectCpuAsync(farm.Http, Project);
        return await FarmChecks.WaitForJobAsync(farm.Http, await FarmChecks.SubmitAsync(farm.Http, Project, SweepYaml), "Succeeded", TimeSpan.FromMinutes(2), () => farm.Output);
    }
}
