using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Procedural;

public sealed class ObjectLayoutTests
{
    private const int Size = 64;

    private static readonly SceneVocabulary Vocabulary = SceneVocabulary.Default;

    public static TheoryData<string> Motions => [.. Vocabulary.Motions];

    // The diffusion model learns to paint the object inside this box, so the box must hold what the renderer draws,
    // and be tight enough to say where: a car is a body, a roof and wheels, so it fills about a third of its box.
    [Theory]
    [MemberData(nameof(Motions))]
    public void Box_holds_the_object_the_renderer_draws(string motion)
    {
        foreach (var obj in Vocabulary.Objects)
        {
            var scene = SceneDescription.Create("snow", obj, "red", motion, 5, Vocabulary);
            foreach (var position in new[] { 0.0, 0.5, 1.0 })
            {
                var frame = ProceduralRenderer.RenderFrame(scene, position, Size, Size).Pixels;
                var box = ObjectLayout.RenderBox(scene, position, Size, Size);
                int red = 0, redInBox = 0;
                for (var p = 0; p < Size * Size; p++)
                {
                    if (frame[3 * p] > 150 && frame[(3 * p) + 1] < 90 && frame[(3 * p) + 2] < 90)
                    {
                        red++;
                        redInBox += box[p] > 0 ? 1 : 0;
                    }
                }

                var label = $"{obj} {motion} at {position}: {redInBox} of {red} red pixels in the box";
                Assert.True(red >= 10, label);
                Assert.True(redInBox >= 0.97 * red, label);
                var boxArea = box.Sum(b => b / 255.0);
                Assert.True(boxArea <= 4 * red, $"{label}; the box covers {boxArea:F0} pixels");
            }
        }
    }

    [Fact]
    public void Box_follows_the_motion_across_the_shot()
    {
        static (double X, double Y, double Area) Centre(string motion, double position)
        {
            var scene = SceneDescription.Create("desert", "ball", "blue", motion, 3, Vocabulary);
            var box = ObjectLayout.RenderBox(scene, position, Size, Size);
            double sum = 0, x = 0, y = 0;
            for (var p = 0; p < box.Length; p++)
            {
                sum += box[p];
                x += box[p] * ((p % Size) + 0.5);
                y += box[p] * ((p / Size) + 0.5);
            }

            return (x / sum, y / sum, sum / 255);
        }

        Assert.True(Centre("left-to-right", 1).X - Centre("left-to-right", 0).X > 25);
        Assert.True(Centre("right-to-left", 0).X - Centre("right-to-left", 1).X > 25);
        Assert.True(Centre("falling", 1).Y - Centre("falling", 0).Y > 15);
        Assert.True(Centre("rising", 0).Y - Centre("rising", 1).Y > 15);
        Assert.True(Centre("approaching", 1).Area > 4 * Centre("approaching", 0).Area);
        Assert.Equal(Centre("static", 0), Centre("static", 1));
    }

    [Fact]
    public void Partly_covered_pixels_add_up_to_the_box_area()
    {
        var scene = SceneDescription.Create("ocean", "boat", "white", "static", 9, Vocabulary);
        var placement = ObjectLayout.Place(scene, 0.5, 1);
        var (left, top, right, bottom) = ObjectLayout.Bounds("boat", placement);

        var covered = ObjectLayout.RenderBox(scene, 0.5, Size, Size).Sum(b => b / 255.0);

        var area = (right - left) * (bottom - top) * Size * Size;
        Assert.InRange(covered, area - 1, area + 1);
    }
}
