using System.Threading.Channels;

namespace OnnxLM;

/// <summary>
/// One sequence submitted to the <see cref="BatchScheduler"/>: its prompt, its per-token step (sampler, stop rules, text) and
/// the channel its tokens are written to. Sequences of one group share a prompt (n samples) and join the batch together.
/// </summary>
internal sealed class BatchSequence
{
    public BatchSequence(int[] prompt, TokenStepper stepper, CancellationToken cancellationToken)
    {
        Prompt = prompt;
        Stepper = stepper;
        CancellationToken = cancellationToken;
    }

    public int[] Prompt { get; }

    public TokenStepper Stepper { get; }

    /// <summary>Cancels this sequence only: its row leaves the batch before the next step.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The tokens as they are chosen; completed after the last one, or with the exception that ended the sequence.</summary>
    public Channel<GeneratedToken> Tokens { get; } =
        Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    /// <summary>
    /// When set (a caller that wants the whole result, not a stream), tokens are added here instead of written to
    /// <see cref="Tokens"/>, so the caller wakes once at the end rather than once per token.
    /// </summary>
    public List<GeneratedToken>? Collected { get; init; }

    /// <summary>The token to append on the next step.</summary>
    public int NextId { get; set; }

    /// <summary>Whether the sequence has ended (its channel is complete) and its row can leave the batch.</summary>
    public bool Done { get; private set; }

    /// <summary>Ends the sequence, with an exception for its reader or normally.</summary>
    public void Complete(Exception? error = null)
    {
        if (Done)
        {
            return;
        }

        Done = true;
        Tokens.Writer.TryComplete(error);
    }

    /// <summary>Ends the sequence as cancelled.</summary>
    public void Cancel() => Complete(new OperationCanceledException("The generation was cancelled.", CancellationToken));
}
