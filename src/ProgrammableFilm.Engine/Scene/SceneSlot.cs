namespace ProgrammableFilm.Engine.Scene;

/// <summary>The four things a prompt can name. The numeric order is the model's conditioning order.</summary>
public enum SceneSlot
{
    /// <summary>Where the shot takes place.</summary>
    Background = 0,

    /// <summary>The one moving subject.</summary>
    Object = 1,

    /// <summary>The subject's colour.</summary>
    Colour = 2,

    /// <summary>How the subject moves across the shot.</summary>
    Motion = 3,
}
