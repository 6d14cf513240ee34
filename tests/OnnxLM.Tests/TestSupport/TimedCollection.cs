namespace OnnxLM.Tests;

/// <summary>Tests that assert how long something takes (a hostile template stopping within a second), so they run alone, not beside the model tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimedCollection
{
    public const string Name = "timed";
}
