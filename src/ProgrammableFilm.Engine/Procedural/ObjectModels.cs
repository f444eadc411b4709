namespace ProgrammableFilm.Engine.Procedural;

/// <summary>The objects as parts in object units: about one unit tall, centred on the origin, facing +x, y down.</summary>
internal static class ObjectModels
{
    public static readonly Shape[] Car =
    [
        new BoxShape(Fill.Body, 0, 0.1, 0.95, 0.2, 0.1),
        new BoxShape(Fill.Body, -0.08, -0.2, 0.48, 0.2, 0.14),
        new BoxShape(Fill.Glass, -0.08, -0.2, 0.38, 0.11, 0.06),
        new CircleShape(Fill.Tyre, -0.52, 0.3, 0.19),
        new CircleShape(Fill.Tyre, 0.52, 0.3, 0.19),
        new CircleShape(Fill.Hub, -0.52, 0.3, 0.08),
        new CircleShape(Fill.Hub, 0.52, 0.3, 0.08),
    ];

    public static readonly Shape[] Ball =
    [
        new CircleShape(Fill.Body, 0, 0, 0.5),
    ];

    public static readonly Shape[] Bird =
    [
        new PolygonShape(Fill.Body, [-0.35, 0.02, -0.75, -0.14, -0.75, 0.22]),
        new EllipseShape(Fill.Body, 0, 0.05, 0.5, 0.2),
        new CircleShape(Fill.Body, 0.45, -0.08, 0.17),
        new PolygonShape(Fill.Beak, [0.58, -0.14, 0.8, -0.06, 0.58, -0.01]),
        new CircleShape(Fill.Eye, 0.5, -0.12, 0.04),
        new PolygonShape(Fill.Body, [-0.25, 0.02, 0.2, 0.02, -0.12, -0.55]),
    ];

    public static readonly Shape[] Boat =
    [
        new BoxShape(Fill.Wood, -0.05, -0.3, 0.025, 0.45, 0),
        new PolygonShape(Fill.Body, [0.02, -0.72, 0.62, 0.1, 0.02, 0.1]),
        new PolygonShape(Fill.Body, [-0.8, 0.15, 0.85, 0.15, 0.6, 0.45, -0.6, 0.45]),
    ];

    /// <summary>The parts of <paramref name="obj"/> and their bounds (left, top, right, bottom) in object units.</summary>
    public static (Shape[] Parts, double Left, double Top, double Right, double Bottom) For(string obj) => obj switch
    {
        "car" => (Car, -0.95, -0.4, 0.95, 0.49),
        "ball" => (Ball, -0.5, -0.5, 0.5, 0.5),
        "bird" => (Bird, -0.75, -0.55, 0.8, 0.25),
        "boat" => (Boat, -0.8, -0.75, 0.85, 0.45),
        _ => throw new NotSupportedException($"The procedural renderer cannot draw the object '{obj}'."),
    };
}
