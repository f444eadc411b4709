using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ProgrammableFilm.Domain.Specs;

/// <summary>
/// A spec document as a plain tree, whatever syntax it came in. YAML files and JSON requests are both read into this
/// tree first so that one reader validates both with the same field names, rules and messages.
/// </summary>
public abstract record SpecNode;

/// <summary>A mapping, keys in document order.</summary>
public sealed record SpecMap(IReadOnlyList<KeyValuePair<string, SpecNode>> Entries) : SpecNode;

/// <summary>A sequence.</summary>
public sealed record SpecList(IReadOnlyList<SpecNode> Items) : SpecNode;

/// <summary>A scalar; <see cref="Text"/> is null for an explicit null.</summary>
public sealed record SpecScalar(string? Text, bool IsString) : SpecNode;

/// <summary>Parses YAML or JSON text into a <see cref="SpecNode"/> tree.</summary>
public static class SpecDocument
{
    /// <summary>Parses YAML (JSON is valid YAML, but JSON requests go through <see cref="ParseJson"/> for exact errors).</summary>
    public static SpecNode ParseYaml(string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new SpecSyntaxException($"malformed YAML at line {e.Start.Line}, column {e.Start.Column}: {Innermost(e).Message}");
        }
        catch (ArgumentException e)
        {
            throw new SpecSyntaxException($"malformed YAML: {e.Message}");
        }

        if (stream.Documents.Count != 1)
        {
            throw new SpecSyntaxException($"expected one YAML document, found {stream.Documents.Count}");
        }

        return FromYaml(stream.Documents[0].RootNode);
    }

    /// <summary>Parses JSON; duplicate keys are rejected rather than silently overwritten.</summary>
    public static SpecNode ParseJson(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
            return FromJson(document.RootElement);
        }
        catch (JsonException e)
        {
            throw new SpecSyntaxException($"malformed JSON at line {(e.LineNumber ?? 0) + 1}: {e.Message}");
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    private static SpecNode FromYaml(YamlNode node) => node switch
    {
        YamlMappingNode map => new SpecMap(map.Children.Select(child => KeyValuePair.Create(KeyText(child.Key), FromYaml(child.Value))).ToList()),
        YamlSequenceNode list => new SpecList(list.Children.Select(FromYaml).ToList()),
        YamlScalarNode scalar => FromYamlScalar(scalar),
        _ => throw new SpecSyntaxException($"unsupported YAML node at line {node.Start.Line}"),
    };

    private static string KeyText(YamlNode key) => key is YamlScalarNode { Value: { } text }
        ? text
        : throw new SpecSyntaxException($"mapping keys must be plain names (line {key.Start.Line})");

    private static SpecScalar FromYamlScalar(YamlScalarNode scalar)
    {
        var quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded;
        if (!quoted && (scalar.Value is null || scalar.Value is "~" or "null" or "Null" or "NULL" || scalar.Value.Length == 0))
        {
            return new SpecScalar(null, false);
        }

        return new SpecScalar(scalar.Value, quoted);
    }

    private static SpecNode FromJson(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var entries = new List<KeyValuePair<string, SpecNode>>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    if (!seen.Add(property.Name))
                    {
                        throw new SpecSyntaxException($"malformed JSON: duplicate key '{property.Name}'");
                    }

                    entries.Add(KeyValuePair.Create(property.Name, FromJson(property.Value)));
                }

                return new SpecMap(entries);
            case JsonValueKind.Array:
                return new SpecList(element.EnumerateArray().Select(FromJson).ToList());
            case JsonValueKind.String:
                return new SpecScalar(element.GetString(), true);
            case JsonValueKind.Number:
                return new SpecScalar(element.GetRawText(), false);
            case JsonValueKind.True:
            case JsonValueKind.False:
                return new SpecScalar(element.GetRawText(), false);
            default:
                return new SpecScalar(null, false);
        }
    }
}

/// <summary>The document could not be parsed at all.</summary>
public sealed class SpecSyntaxException(string message) : Exception(message);
