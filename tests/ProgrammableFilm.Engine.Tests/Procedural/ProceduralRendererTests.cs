using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Procedural;

public sealed class ProceduralRendererTests
{
    private const int Size = 64;
    private const int ColourTolerance = 20;

    private static readonly SceneVocabulary Vocabulary = SceneVocabulary.Default;

    public static TheoryData<string> Backgrounds => [.. Vocabulary.Backgrounds];

    public static TheoryData<string> Motions => [.. Vocabulary.Motions];

    [Fact]
    public void Same_scene_and_position_give_identical_bytes()
    {
        var scene = SceneDescription.FromPrompt("a blue car racing through the night city", 7, Vocabulary);

        var a = ProceduralRenderer.RenderFrame(scene, 0.3, 320, 180);
        var b = ProceduralRenderer.RenderFrame(scene, 0.3, 320, 180);

        Assert.Equal(a.Pixels, b.Pixels);
    }

    [Fact]
    public void Different_seeds_move_the_object()
    {
        var red = Vocabulary.ColourOf("red");
        var centroids = Enumerable.Range(1, 5)
            .Select(seed => ImageStats.CentroidNear(Render("a red ball in the snow", seed), red, ColourTolerance))
            .Select(c => (Math.Round(c.X), Math.Round(c.Y)))
            .ToHashSet();

        Assert.True(centroids.Count >= 4, string.Join(", ", centroids));
    }

    [Theory]
    [MemberData(nameof(Backgrounds))]
    public void Every_object_is_drawn_in_the_prompted_colour_where_the_layout_puts_it(string background)
    {
        foreach (var obj in Vocabulary.Objects)
        {
            foreach (var colour in Vocabulary.Colours)
            {
                var scene = SceneDescription.Create(background, obj, colour, "static", 11, Vocabulary);
                var image = ProceduralRenderer.RenderFrame(scene, 0.5, Size, Size);

                var found = ImageStats.CentroidNear(image, scene.ObjectColour, ColourTolerance);

                var label = $"{colour} {obj} on {background}: {found}";
                Assert.True(found.Count >= 60, label);
                Assert.InRange(found.X + 0.5, (scene.Layout.ObjectX * Size) - 4, (scene.Layout.ObjectX * Size) + 4);
                Assert.InRange(found.Y + 0.5, (scene.Layout.ObjectY * Size) - 5, (scene.Layout.ObjectY * Size) + 5);
            }
        }
    }

    [Theory]
    [InlineData("desert")]
    [InlineData("night-city")]
    [InlineData("ocean")]
    [InlineData("forest")]
    [InlineData("snow")]
    [InlineData("sunset-sky")]
    public void Background_has_its_characteristic_colours(string background)
    {
        // The ball stays in the middle 30% of the width, so the left strip is pure background.
        var image = ProceduralRenderer.RenderFrame(SceneDescription.Create(background, "ball", "red", "static", 5, Vocabulary), 0, Size, Size);
        var top = ImageStats.MeanColour(image, 0, 0, 8, 6);
        var bottom = ImageStats.MeanColour(image, 0, Size - 6, 8, 6);

        switch (background)
        {
            case "desert":
                Assert.True(top.B > top.R + 40, $"blue sky, got {top}");
                Assert.True(bottom.R > bottom.B + 50 && bottom.R > 150, $"sand, got {bottom}");
                break;
            case "night-city":
                Assert.True(top.R < 40 && top.G < 40 && top.B < 80, $"dark sky, got {top}");
                Assert.True(bottom.R < 60 && bottom.G < 60 && bottom.B < 70, $"dark street, got {bottom}");
                break;
            case "ocean":
                Assert.True(top.B > top.R + 40, $"blue sky, got {top}");
                Assert.True(bottom.B > bottom.R + 60 && bottom.B > bottom.G, $"blue water, got {bottom}");
                break;
            case "forest":
                Assert.True(bottom.G > bottom.R + 20 && bottom.G > bottom.B + 20, $"grass, got {bottom}");
                break;
            case "snow":
                Assert.True(Math.Min(bottom.R, Math.Min(bottom.G, bottom.B)) > 200, $"snow, got {bottom}");
                break;
            default:
                Assert.True(top.B > top.G + 30 && top.R > top.G, $"purple sky, got {top}");
                var low = ImageStats.MeanColour(image, 0, (int)(0.62 * Size), 8, 2);
                Assert.True(low.R > low.B + 40, $"orange near the horizon, got {low}");
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Motions))]
    public void Object_moves_the_prompted_way_across_the_shot(string motion)
    {
        foreach (var obj in Vocabulary.Objects)
        {
            var scene = SceneDescription.Create("ocean", obj, "red", motion, 3, Vocabulary);
            var track = Enumerable.Range(0, 5)
                .Select(i => ImageStats.CentroidNear(ProceduralRenderer.RenderFrame(scene, i / 4.0, Size, Size), scene.ObjectColour, ColourTolerance))
                .ToArray();

            for (var i = 1; i < track.Length; i++)
            {
                var (before, after) = (track[i - 1], track[i]);
                var label = $"{obj} {motion}: {before} -> {after}";
                switch (motion)
                {
                    case "left-to-right":
                        Assert.True(after.X > before.X + 3, label);
                        break;
                    case "right-to-left":
                        Assert.True(after.X < before.X - 3, label);
                        break;
                    case "rising":
                        Assert.True(after.Y < before.Y - 3, label);
                        break;
                    case "falling":
                        Assert.True(after.Y > before.Y + 3, label);
                        break;
                    case "approaching":
                        Assert.True(after.Count > before.Count * 1.3, label);
                        break;
                    default:
                        Assert.Equal(before, after);
                        break;
                }
            }
        }
    }

    [Fact]
    public void Picture_is_the_same_at_every_resolution()
    {
        var scene = SceneDescription.FromPrompt("a yellow boat sailing on the ocean", 9, Vocabulary);
        var small = ProceduralRenderer.RenderFrame(scene, 0.4, Size, Size);
        var large = ProceduralRenderer.RenderFrame(scene, 0.4, Size * 4, Size * 4);

        // Box-filter the large frame down by 4 and compare.
        double difference = 0;
        for (var y = 0; y < Size; y++)
        {
            for (var x = 0; x < Size; x++)
            {
                var mean = ImageStats.MeanColour(large, x * 4, y * 4, 4, 4);
                var offset = ((y * Size) + x) * 3;
                difference += Math.Abs(mean.R - small.Pixels[offset]) + Math.Abs(mean.G - small.Pixels[offset + 1]) + Math.Abs(mean.B - small.Pixels[offset + 2]);
            }
        }

        Assert.True(difference / (Size * Size * 3) < 4, $"mean absolute difference {difference / (Size * Size * 3)}");
    }

    [Fact]
    public void Wide_frames_keep_shapes_in_proportion()
    {
        var scene = SceneDescription.Create("snow", "ball", "red", "static", 4, Vocabulary);
        var square = ImageStats.CentroidNear(ProceduralRenderer.RenderFrame(scene, 0, 90, 90), scene.ObjectColour, ColourTolerance);
        var wide = ImageStats.CentroidNear(ProceduralRenderer.RenderFrame(scene, 0, 160, 90), scene.ObjectColour, ColourTolerance);

        // Same height, so the ball covers the same number of pixels.
        Assert.InRange(wide.Count, square.Count * 0.95, square.Count * 1.05);
    }

    private static RgbImage Render(string prompt, long seed) =>
        ProceduralRenderer.RenderFrame(SceneDescription.FromPrompt(prompt, seed, Vocabulary), 0, Size, Size);
}
