using System.Globalization;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

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

/// <summary>
/// Parses YAML or JSON text into a <see cref="SpecNode"/> tree. Nesting is bounded by
/// <see cref="SpecLimits.MaxNestingDepth"/> and size (after alias expansion) by <see cref="SpecLimits.MaxSpecNodes"/>,
/// so hostile text costs time proportional to its length and never a stack overflow.
/// </summary>
public static class SpecDocument
{
    /// <summary>Parses YAML (JSON is valid YAML, but JSON requests go through <see cref="ParseJson"/> for exact errors).</summary>
    public static SpecNode ParseYaml(string text)
    {
        // YamlDotNet reads a raw NUL as the end of a line, so the document would silently mean something else.
        if (text.IndexOf('\0', StringComparison.Ordinal) is var nul and >= 0)
        {
            var line = text.AsSpan(0, nul).Count('\n') + 1;
            var column = nul - text.LastIndexOf('\n', nul);
            throw new SpecSyntaxException($"malformed YAML at line {line}, column {column}: a raw NUL character (U+0000) is not allowed");
        }

        try
        {
            return new YamlTreeBuilder(new Parser(new StringReader(text))).Read();
        }
        catch (YamlException e)
        {
            throw new SpecSyntaxException($"malformed YAML at line {e.Start.Line}, column {e.Start.Column}: {Innermost(e).Message}");
        }
        catch (ArgumentException e)
        {
            throw new SpecSyntaxException($"malformed YAML: {e.Message}");
        }
    }

    /// <summary>Parses JSON; duplicate keys are rejected rather than silently overwritten.</summary>
    public static SpecNode ParseJson(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions
            {
                AllowTrailingCommas = false,
                CommentHandling = JsonCommentHandling.Disallow,
                MaxDepth = SpecLimits.MaxNestingDepth,
            });
            return FromJson(document.RootElement, new NodeBudget());
        }
        catch (JsonException e)
        {
            throw new SpecSyntaxException($"malformed JSON at line {(e.LineNumber ?? 0) + 1}: {e.Message}");
        }
        catch (ArgumentException e)
        {
            // A string holding half a surrogate pair cannot be transcoded to UTF-8 for the parser.
            throw new SpecSyntaxException($"malformed JSON: {e.Message}");
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    private static SpecScalar FromYamlScalar(Scalar scalar)
    {
        var quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded;
        if (!quoted && scalar.Value is "" or "~" or "null" or "Null" or "NULL")
        {
            return new SpecScalar(null, false);
        }

        return new SpecScalar(scalar.Value, quoted);
    }

    // Recursion is safe here: JsonDocument has already refused anything nested deeper than MaxNestingDepth.
    private static SpecNode FromJson(JsonElement element, NodeBudget budget)
    {
        budget.Spend(1);
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var entries = new List<KeyValuePair<string, SpecNode>>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    var name = JsonName(property);
                    if (!seen.Add(name))
                    {
                        throw new SpecSyntaxException($"malformed JSON: duplicate key '{SpecText.Printable(name)}'");
                    }

                    entries.Add(KeyValuePair.Create(name, FromJson(property.Value, budget)));
                }

                return new SpecMap(entries);
            case JsonValueKind.Array:
                var items = new List<SpecNode>();
                foreach (var item in element.EnumerateArray())
                {
                    items.Add(FromJson(item, budget));
                }

                return new SpecList(items);
            case JsonValueKind.String:
                return new SpecScalar(JsonString(element), true);
            case JsonValueKind.Number:
            case JsonValueKind.True:
            case JsonValueKind.False:
                return new SpecScalar(element.GetRawText(), false);
            default:
                return new SpecScalar(null, false);
        }
    }

    // System.Text.Json refuses to decode an escaped unpaired surrogate ("\ud800"); decoding it here instead lets the
    // reader reject it with the name of the field that holds it.
    private static string JsonString(JsonElement element)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            return UnescapeJson(element.GetRawText());
        }
    }

    private static string JsonName(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            // ToString is the property's raw text, starting with its quoted name.
            return UnescapeJson(property.ToString());
        }
    }

    /// <summary>Decodes the quoted JSON string at the start of <paramref name="raw"/>, which the parser has already validated.</summary>
    private static string UnescapeJson(string raw)
    {
        var text = new StringBuilder();
        for (var i = 1; raw[i] != '"'; i++)
        {
            if (raw[i] != '\\')
            {
                text.Append(raw[i]);
                continue;
            }

            i++;
            switch (raw[i])
            {
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case 'n': text.Append('\n'); break;
                case 'r': text.Append('\r'); break;
                case 't': text.Append('\t'); break;
                case 'u':
                    text.Append((char)int.Parse(raw.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                default: text.Append(raw[i]); break;
            }
        }

        return text.ToString();
    }

    /// <summary>Counts values as they are built, aliases at their expanded size.</summary>
    private sealed class NodeBudget
    {
        private int _spent;

        public void Spend(int nodes)
        {
            _spent += nodes;
            if (_spent > SpecLimits.MaxSpecNodes)
            {
                throw new SpecSyntaxException($"the document holds more than {SpecLimits.MaxSpecNodes} values (aliases counted at their expanded size); a spec needs far fewer");
            }
        }
    }

    /// <summary>
    /// Builds the tree from YamlDotNet's event stream rather than its RepresentationModel: the model loads nesting by
    /// recursion and resolves an alias to its own ancestor (<c>a: &amp;x [*x]</c>) into a cyclic graph, so a walk of
    /// it never ends. Here each open collection is a frame on an explicit stack, an alias reuses the anchored
    /// (immutable) subtree, and its expanded size and depth are charged against the limits before it is attached.
    /// </summary>
    private sealed class YamlTreeBuilder(IParser parser)
    {
        private readonly Stack<Frame> _open = new();
        private readonly NodeBudget _budget = new();

        // An anchor maps to null while its collection is still open: an alias to it then refers to its own ancestor.
        private readonly Dictionary<string, Built?> _anchors = new(StringComparer.Ordinal);

        public SpecNode Read()
        {
            parser.Consume<StreamStart>();
            if (parser.TryConsume<StreamEnd>(out _))
            {
                throw new SpecSyntaxException("expected one YAML document, found 0");
            }

            parser.Consume<DocumentStart>();
            var root = ReadNode();
            parser.Consume<DocumentEnd>();

            var documents = 1;
            while (!parser.TryConsume<StreamEnd>(out _))
            {
                documents += parser.Consume<ParsingEvent>() is DocumentStart ? 1 : 0;
            }

            return documents == 1 ? root : throw new SpecSyntaxException($"expected one YAML document, found {documents}");
        }

        private SpecNode ReadNode()
        {
            while (true)
            {
                var next = parser.Consume<ParsingEvent>();
                if (_open.TryPeek(out var parent) && parent.ExpectsKey && next is not (Scalar or AnchorAlias or MappingEnd))
                {
                    throw new SpecSyntaxException($"mapping keys must be plain names (line {next.Start.Line})");
                }

                Built built;
                switch (next)
                {
                    case MappingStart or SequenceStart:
                        Open((NodeEvent)next);
                        continue;
                    case MappingEnd or SequenceEnd:
                        var frame = _open.Pop();
                        built = frame.Build();
                        Anchor(frame.Anchor, built);
                        break;
                    case Scalar scalar:
                        _budget.Spend(1);
                        built = new Built(FromYamlScalar(scalar), 1, 0, scalar.Value);
                        Anchor(scalar.Anchor, built);
                        break;
                    case AnchorAlias alias:
                        built = Resolve(alias);
                        break;
                    default:
                        throw new SpecSyntaxException($"unsupported YAML at line {next.Start.Line}");
                }

                if (!_open.TryPeek(out parent))
                {
                    return built.Node;
                }

                parent.Add(built, next);
            }
        }

        private void Open(NodeEvent start)
        {
            if (_open.Count >= SpecLimits.MaxNestingDepth)
            {
                throw new SpecSyntaxException($"the document nests more than {SpecLimits.MaxNestingDepth} levels deep (line {start.Start.Line})");
            }

            _budget.Spend(1);
            if (!start.Anchor.IsEmpty)
            {
                _anchors[start.Anchor.Value] = null;
            }

            _open.Push(new Frame(start is MappingStart, start.Anchor));
        }

        private void Anchor(AnchorName anchor, Built built)
        {
            if (!anchor.IsEmpty)
            {
                _anchors[anchor.Value] = built;
            }
        }

        private Built Resolve(AnchorAlias alias)
        {
            var name = SpecText.Printable(alias.Value.Value);
            if (!_anchors.TryGetValue(alias.Value.Value, out var anchored))
            {
                throw new SpecSyntaxException($"alias *{name} at line {alias.Start.Line} refers to no anchor defined before it");
            }

            if (anchored is null)
            {
                throw new SpecSyntaxException($"alias *{name} at line {alias.Start.Line} refers to its own ancestor &{name}; a spec cannot contain itself");
            }

            if (_open.Count + anchored.Height > SpecLimits.MaxNestingDepth)
            {
                throw new SpecSyntaxException($"the document nests more than {SpecLimits.MaxNestingDepth} levels deep once alias *{name} (line {alias.Start.Line}) is expanded");
            }

            _budget.Spend(anchored.Size);
            return anchored;
        }
    }

    /// <summary>A finished node with its expanded size, its height in collections, and its YAML text if a scalar (for use as a key).</summary>
    private sealed record Built(SpecNode Node, int Size, int Height, string? KeyText);

    /// <summary>A collection whose end has not been read yet.</summary>
    private sealed class Frame(bool isMapping, AnchorName anchor)
    {
        private readonly List<SpecNode> _items = [];
        private readonly List<KeyValuePair<string, SpecNode>> _entries = [];
        private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
        private string? _key;
        private int _size = 1;
        private int _height = 1;

        public AnchorName Anchor => anchor;

        public bool ExpectsKey => isMapping && _key is null;

        public void Add(Built child, ParsingEvent at)
        {
            _size += child.Size;
            _height = Math.Max(_height, child.Height + 1);
            if (!isMapping)
            {
                _items.Add(child.Node);
            }
            else if (_key is null)
            {
                _key = child.KeyText ?? throw new SpecSyntaxException($"mapping keys must be plain names (line {at.Start.Line})");
                if (!_keys.Add(_key))
                {
                    throw new YamlException(at.Start, at.End, $"duplicate key '{SpecText.Printable(_key)}'");
                }
            }
            else
            {
                _entries.Add(KeyValuePair.Create(_key, child.Node));
                _key = null;
            }
        }

        public Built Build() => new(isMapping ? new SpecMap(_entries) : new SpecList(_items), _size, _height, null);
    }
}

/// <summary>The document could not be parsed at all.</summary>
public sealed class SpecSyntaxException(string message) : Exception(message);
