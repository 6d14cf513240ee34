using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// A SentencePiece <c>.model</c> file (the ModelProto protobuf: pieces, trainer_spec, normalizer_spec,
/// denormalizer_spec), read with <see cref="ProtoReader"/>, and the <see cref="TokenizerPipeline"/> that
/// encodes and decodes as C++ SentencePiece's EncodeAsIds / DecodeIds do (no BOS/EOS added: callers add
/// <see cref="BosId"/> / <see cref="EosId"/> as the model wants).
/// </summary>
internal sealed class SentencePieceModelFile
{
    private const string DefaultUnknownSurface = " \u2047 ";

    private SentencePieceModelFile(string source)
    {
        Source = source;
    }

    /// <summary>ModelProto.SentencePiece.Type.</summary>
    internal enum PieceType
    {
        Normal = 1,
        Unknown = 2,
        Control = 3,
        UserDefined = 4,
        Unused = 5,
        Byte = 6,
    }

    /// <summary>TrainerSpec.ModelType.</summary>
    internal enum ModelKind
    {
        Unigram = 1,
        Bpe = 2,
        Word = 3,
        Char = 4,
    }

    public string Source { get; }

    public List<(string Piece, double Score)> Pieces { get; } = [];

    public List<PieceType> Types { get; } = [];

    public ModelKind Kind { get; private set; } = ModelKind.Unigram;

    public bool ByteFallback { get; private set; }

    public bool WhitespaceAsSuffix { get; private set; }

    public string UnknownPiece { get; private set; } = "<unk>";

    public string BosPiece { get; private set; } = "<s>";

    public string EosPiece { get; private set; } = "</s>";

    public string PadPiece { get; private set; } = "<pad>";

    public string UnknownSurface { get; private set; } = DefaultUnknownSurface;

    public NormalizerSpec Normalizer { get; private set; } = new();

    public NormalizerSpec? Denormalizer { get; private set; }

    /// <summary>The id of the UNKNOWN piece (SentencePiece requires exactly one).</summary>
    public int UnkId { get; private set; } = -1;

    /// <summary>The id of trainer_spec.bos_piece when it is a control piece, else null (SentencePiece's bos_id() == -1).</summary>
    public int? BosId { get; private set; }

    /// <summary>The id of trainer_spec.eos_piece when it is a control piece, else null.</summary>
    public int? EosId { get; private set; }

    /// <summary>The id of trainer_spec.pad_piece when it is a control piece, else null.</summary>
    public int? PadId { get; private set; }

    /// <summary>The unknown piece's id as SentencePiece's unk_id() reports it: null unless unk_piece is the UNKNOWN piece.</summary>
    public int? UnknownId { get; private set; }

    /// <summary>Reads a .model file and builds its pipeline.</summary>
    public static TokenizerPipeline Load(string file) => Read(file).CreatePipeline();

    /// <summary>Reads a .model file.</summary>
    public static SentencePieceModelFile Read(string file)
    {
        byte[] data;
        try
        {
            data = ModelFile.ReadAllBytes(file, ModelFile.MaxTokenizerBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"Cannot read the SentencePiece model '{file}': {e.Message}", file, e);
        }

        return Parse(data, file);
    }

    /// <summary>Parses the bytes of a .model file; <paramref name="source"/> names it in messages.</summary>
    public static SentencePieceModelFile Parse(byte[] data, string source)
    {
        var model = new SentencePieceModelFile(source);
        try
        {
            model.ReadModel(new ProtoReader(data, "ModelProto"));
        }
        catch (InvalidDataException e)
        {
            throw new ModelFormatException($"The SentencePiece model '{source}' is malformed: {e.Message}.", source, e);
        }

        model.Validate();
        return model;
    }

    private void ReadModel(ProtoReader reader)
    {
        while (reader.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == ProtoReader.LengthDelimited:
                    ReadPiece(reader.ReadMessage("ModelProto.pieces"));
                    break;
                case 2 when wire == ProtoReader.LengthDelimited:
                    ReadTrainerSpec(reader.ReadMessage("ModelProto.trainer_spec"));
                    break;
                case 3 when wire == ProtoReader.LengthDelimited:
                    Normalizer = NormalizerSpec.Read(reader.ReadMessage("ModelProto.normalizer_spec"));
                    break;
                case 5 when wire == ProtoReader.LengthDelimited:
                    Denormalizer = NormalizerSpec.Read(reader.ReadMessage("ModelProto.denormalizer_spec"));
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
    }

    /// <summary>The pipeline: SentencePiece's normalizer, the UNIGRAM or BPE model, its decoder; no pre-tokenizer.</summary>
    public TokenizerPipeline CreatePipeline()
    {
        var types = Types.ToArray();
        ITokenModel model = Kind switch
        {
            ModelKind.Unigram => UnigramModel.ForSentencePiece(Pieces, types, UnkId, ByteFallback),
            ModelKind.Bpe => new SentencePieceBpeModel(Pieces, types, UnkId, ByteFallback),
            _ => throw new ModelFormatException($"The SentencePiece model '{Source}' is a {Kind.ToString().ToUpperInvariant()} model; only UNIGRAM and BPE are supported.", Source),
        };

        var userDefined = new List<string>();
        var reserved = new Dictionary<string, PieceType>(StringComparer.Ordinal);
        for (var id = 0; id < Pieces.Count; id++)
        {
            switch (Types[id])
            {
                case PieceType.UserDefined:
                    userDefined.Add(Pieces[id].Piece);
                    break;
                case PieceType.Control or PieceType.Unknown or PieceType.Byte:
                    reserved.TryAdd(Pieces[id].Piece, Types[id]);
                    break;
            }
        }

        var normalizer = new SentencePieceNormalizer(Map(Normalizer), Normalizer.AddDummyPrefix, Normalizer.RemoveExtraWhitespaces,
            Normalizer.EscapeWhitespaces, WhitespaceAsSuffix, userDefined);

        // SentencePiece only builds a denormalizer for a spec with rules; it has no user-defined pieces or suffix mode.
        var denormalizer = Denormalizer is { PrecompiledCharsmap.Length: > 0 } d
            ? new SentencePieceNormalizer(Map(d), d.AddDummyPrefix, d.RemoveExtraWhitespaces, d.EscapeWhitespaces, false, [])
            : null;
        var decoder = new SentencePieceDecoder(reserved, UnknownSurface, Normalizer.AddDummyPrefix, Normalizer.RemoveExtraWhitespaces, denormalizer);

        // Control pieces are not added tokens: SentencePiece never matches "<s>" in text, and its decoder drops them.
        return new TokenizerPipeline(Source, model, [], normalizer, null, null, decoder) { UnknownSurface = UnknownSurface };
    }

    private PrecompiledNormalizer? Map(NormalizerSpec spec) =>
        spec.PrecompiledCharsmap.Length == 0 ? null : new PrecompiledNormalizer(spec.PrecompiledCharsmap, Source);

    /// <summary>model_interface.cc's PieceToId without the unknown default: control, unknown and byte pieces first.</summary>
    private int PieceToId(string piece)
    {
        var found = -1;
        for (var id = 0; id < Pieces.Count; id++)
        {
            if (Pieces[id].Piece != piece)
            {
                continue;
            }

            if (Types[id] is PieceType.Control or PieceType.Unknown or PieceType.Byte)
            {
                return id;
            }

            found = found < 0 ? id : found;
        }

        return found;
    }

    private int? ControlId(string piece) => PieceToId(piece) is var id && id >= 0 && Types[id] == PieceType.Control ? id : null;

    private void ReadPiece(ProtoReader reader)
    {
        var piece = string.Empty;
        var score = 0f;
        var type = PieceType.Normal;
        while (reader.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == ProtoReader.LengthDelimited:
                    piece = reader.ReadString();
                    break;
                case 2 when wire == ProtoReader.Fixed32:
                    score = reader.ReadFloat();
                    break;
                case 3 when wire == ProtoReader.VarintType:
                    type = (PieceType)(int)reader.ReadVarint();
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        Pieces.Add((piece, score));
        Types.Add(type);
    }

    private void ReadTrainerSpec(ProtoReader reader)
    {
        while (reader.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 3 when wire == ProtoReader.VarintType:
                    Kind = (ModelKind)(int)reader.ReadVarint();
                    break;
                case 24 when wire == ProtoReader.VarintType:
                    WhitespaceAsSuffix = reader.ReadVarint() != 0;
                    break;
                case 35 when wire == ProtoReader.VarintType:
                    ByteFallback = reader.ReadVarint() != 0;
                    break;
                case 44 when wire == ProtoReader.LengthDelimited:
                    UnknownSurface = reader.ReadString();
                    break;
                case 45 when wire == ProtoReader.LengthDelimited:
                    UnknownPiece = reader.ReadString();
                    break;
                case 46 when wire == ProtoReader.LengthDelimited:
                    BosPiece = reader.ReadString();
                    break;
                case 47 when wire == ProtoReader.LengthDelimited:
                    EosPiece = reader.ReadString();
                    break;
                case 48 when wire == ProtoReader.LengthDelimited:
                    PadPiece = reader.ReadString();
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
    }

    /// <summary>The checks of model_interface.cc's InitializePieces, which refuses the same files.</summary>
    private void Validate()
    {
        if (Pieces.Count == 0)
        {
            throw new ModelFormatException($"The SentencePiece model '{Source}' has no pieces.", Source);
        }

        var normal = new HashSet<string>(StringComparer.Ordinal);
        var reserved = new HashSet<string>(StringComparer.Ordinal);
        var bytes = new bool[256];
        for (var id = 0; id < Pieces.Count; id++)
        {
            var (piece, _) = Pieces[id];
            var type = Types[id];
            if (piece.Length == 0)
            {
                throw new ModelFormatException($"Piece {id} of the SentencePiece model '{Source}' is empty.", Source);
            }

            if (type is < PieceType.Normal or > PieceType.Byte)
            {
                throw new ModelFormatException($"Piece {id} ('{piece}') of the SentencePiece model '{Source}' has the unknown type {(int)type}.", Source);
            }

            var isNormal = type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused;
            if (!(isNormal ? normal : reserved).Add(piece))
            {
                throw new ModelFormatException($"Piece '{piece}' is defined twice in the SentencePiece model '{Source}' (again as id {id}).", Source);
            }

            if (type == PieceType.Unknown)
            {
                if (UnkId >= 0)
                {
                    throw new ModelFormatException($"The SentencePiece model '{Source}' has two unknown pieces (ids {UnkId} and {id}).", Source);
                }

                UnkId = id;
            }

            if (type == PieceType.Byte)
            {
                if (!ByteFallback)
                {
                    throw new ModelFormatException($"The SentencePiece model '{Source}' has the byte piece '{piece}' but byte_fallback is off.", Source);
                }

                if (ParseBytePiece(piece) is not int b)
                {
                    throw new ModelFormatException($"The byte piece '{piece}' of the SentencePiece model '{Source}' is not of the form <0xXX>.", Source);
                }

                bytes[b] = true;
            }
        }

        if (UnkId < 0)
        {
            throw new ModelFormatException($"The SentencePiece model '{Source}' has no unknown piece.", Source);
        }

        if (ByteFallback && Array.IndexOf(bytes, false) >= 0)
        {
            throw new ModelFormatException($"The SentencePiece model '{Source}' has byte_fallback on but lacks byte piece <0x{Array.IndexOf(bytes, false):X2}>.", Source);
        }

        BosId = ControlId(BosPiece);
        EosId = ControlId(EosPiece);
        PadId = ControlId(PadPiece);
        UnknownId = PieceToId(UnknownPiece) is var unk && unk >= 0 && Types[unk] == PieceType.Unknown ? unk : null;
    }

    private static int? ParseBytePiece(string piece)
    {
        if (piece.Length != 6 || !piece.StartsWith("<0x", StringComparison.Ordinal) || piece[5] != '>')
        {
            return null;
        }

        return int.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var b) ? b : null;
    }

    /// <summary>NormalizerSpec, with the proto's defaults.</summary>
    internal sealed class NormalizerSpec
    {
        public string Name { get; private set; } = string.Empty;

        public byte[] PrecompiledCharsmap { get; private set; } = [];

        public bool AddDummyPrefix { get; private set; } = true;

        public bool RemoveExtraWhitespaces { get; private set; } = true;

        public bool EscapeWhitespaces { get; private set; } = true;

        public static NormalizerSpec Read(ProtoReader reader)
        {
            var spec = new NormalizerSpec();
            while (reader.Next(out var field, out var wire))
            {
                switch (field)
                {
                    case 1 when wire == ProtoReader.LengthDelimited:
                        spec.Name = reader.ReadString();
                        break;
                    case 2 when wire == ProtoReader.LengthDelimited:
                        spec.PrecompiledCharsmap = reader.ReadBytes();
                        break;
                    case 3 when wire == ProtoReader.VarintType:
                        spec.AddDummyPrefix = reader.ReadVarint() != 0;
                        break;
                    case 4 when wire == ProtoReader.VarintType:
                        spec.RemoveExtraWhitespaces = reader.ReadVarint() != 0;
                        break;
                    case 5 when wire == ProtoReader.VarintType:
                        spec.EscapeWhitespaces = reader.ReadVarint() != 0;
                        break;
                    default:
                        reader.Skip(wire);
                        break;
                }
            }

            return spec;
        }
    }
}
