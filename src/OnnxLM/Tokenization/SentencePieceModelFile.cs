using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// A SentencePiece <c>.model</c> file (the ModelProto protobuf: pieces, trainer_spec, normalizer_spec,
/// denormalizer_spec), read with a small protobuf reader of its own, and the <see cref="TokenizerPipeline"/> that
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
        var reader = new ProtoReader(data, source, "ModelProto");
        while (reader.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == ProtoReader.LengthDelimited:
                    model.ReadPiece(reader.Message("ModelProto.pieces"));
                    break;
                case 2 when wire == ProtoReader.LengthDelimited:
                    model.ReadTrainerSpec(reader.Message("ModelProto.trainer_spec"));
                    break;
                case 3 when wire == ProtoReader.LengthDelimited:
                    model.Normalizer = NormalizerSpec.Read(reader.Message("ModelProto.normalizer_spec"));
                    break;
                case 5 when wire == ProtoReader.LengthDelimited:
                    model.Denormalizer = NormalizerSpec.Read(reader.Message("ModelProto.denormalizer_spec"));
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        model.Validate();
        return model;
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
                    piece = reader.String();
                    break;
                case 2 when wire == ProtoReader.Fixed32:
                    score = reader.Float();
                    break;
                case 3 when wire == ProtoReader.VarintType:
                    type = (PieceType)(int)reader.Varint();
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
                    Kind = (ModelKind)(int)reader.Varint();
                    break;
                case 24 when wire == ProtoReader.VarintType:
                    WhitespaceAsSuffix = reader.Varint() != 0;
                    break;
                case 35 when wire == ProtoReader.VarintType:
                    ByteFallback = reader.Varint() != 0;
                    break;
                case 44 when wire == ProtoReader.LengthDelimited:
                    UnknownSurface = reader.String();
                    break;
                case 45 when wire == ProtoReader.LengthDelimited:
                    UnknownPiece = reader.String();
                    break;
                case 46 when wire == ProtoReader.LengthDelimited:
                    BosPiece = reader.String();
                    break;
                case 47 when wire == ProtoReader.LengthDelimited:
                    EosPiece = reader.String();
                    break;
                case 48 when wire == ProtoReader.LengthDelimited:
                    PadPiece = reader.String();
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
                        spec.Name = reader.String();
                        break;
                    case 2 when wire == ProtoReader.LengthDelimited:
                        spec.PrecompiledCharsmap = reader.Bytes().ToArray();
                        break;
                    case 3 when wire == ProtoReader.VarintType:
                        spec.AddDummyPrefix = reader.Varint() != 0;
                        break;
                    case 4 when wire == ProtoReader.VarintType:
                        spec.RemoveExtraWhitespaces = reader.Varint() != 0;
                        break;
                    case 5 when wire == ProtoReader.VarintType:
                        spec.EscapeWhitespaces = reader.Varint() != 0;
                        break;
                    default:
                        reader.Skip(wire);
                        break;
                }
            }

            return spec;
        }
    }

    /// <summary>
    /// A minimal protobuf reader over one message: varint, 64-bit, length-delimited and 32-bit fields (groups are
    /// refused); anything truncated or malformed is a <see cref="ModelFormatException"/> naming the file and message.
    /// </summary>
    internal sealed class ProtoReader
    {
        public const int VarintType = 0;
        public const int Fixed64 = 1;
        public const int LengthDelimited = 2;
        public const int Fixed32 = 5;

        private readonly byte[] _data;
        private readonly int _end;
        private readonly string _source;
        private readonly string _message;
        private int _position;

        public ProtoReader(byte[] data, string source, string message)
            : this(data, 0, data.Length, source, message)
        {
        }

        private ProtoReader(byte[] data, int start, int end, string source, string message)
        {
            _data = data;
            _position = start;
            _end = end;
            _source = source;
            _message = message;
        }

        /// <summary>Reads the next field's key; false at the end of the message.</summary>
        public bool Next(out int field, out int wire)
        {
            if (_position >= _end)
            {
                field = 0;
                wire = 0;
                return false;
            }

            var key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field <= 0 || key >> 3 > int.MaxValue)
            {
                throw Error($"has an invalid field number {key >> 3}");
            }

            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_position >= _end)
                {
                    throw Error("is truncated inside a varint");
                }

                var b = _data[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }

            throw Error("has a varint longer than 10 bytes");
        }

        public float Float() => BitConverter.Int32BitsToSingle((int)Fixed(4));

        public ReadOnlySpan<byte> Bytes()
        {
            var (start, length) = Length();
            return _data.AsSpan(start, length);
        }

        public string String()
        {
            var bytes = Bytes();
            try
            {
                return new UTF8Encoding(false, true).GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw new ModelFormatException($"The SentencePiece model '{_source}' is malformed: a string in {_message} is not valid UTF-8.", _source, e);
            }
        }

        /// <summary>The embedded message of a length-delimited field.</summary>
        public ProtoReader Message(string name)
        {
            var (start, length) = Length();
            return new ProtoReader(_data, start, start + length, _source, name);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case VarintType:
                    Varint();
                    break;
                case Fixed64:
                    Fixed(8);
                    break;
                case LengthDelimited:
                    Length();
                    break;
                case Fixed32:
                    Fixed(4);
                    break;
                default:
                    throw Error($"has a field of unsupported wire type {wire}");
            }
        }

        private (int Start, int Length) Length()
        {
            var length = Varint();
            if (length > (ulong)(_end - _position))
            {
                throw Error($"is truncated: a field of {length} bytes has only {_end - _position} left");
            }

            var start = _position;
            _position += (int)length;
            return (start, (int)length);
        }

        private ulong Fixed(int size)
        {
            if (_end - _position < size)
            {
                throw Error($"is truncated inside a {size * 8}-bit field");
            }

            ulong value = 0;
            for (var i = size - 1; i >= 0; i--)
            {
                value = (value << 8) | _data[_position + i];
            }

            _position += size;
            return value;
        }

        private ModelFormatException Error(string what) =>
            new($"The SentencePiece model '{_source}' is malformed: {_message} {what} (at byte {_position}).", _source);
    }
}
