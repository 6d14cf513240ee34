namespace OnnxLM.Hosting;

/// <summary>
/// Admits up to a number of requests at once; the rest wait first in, first out in a bounded queue. A waiting request
/// that is cancelled leaves the queue; a full queue refuses at once. (Batching concurrent sequences into one model
/// run does not change it: admitted requests are the rows of the model's batch, BatchScheduler.)
/// </summary>
internal sealed class RequestQueue(int maxRunning, int maxWaiting, string modelId)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<TaskCompletionSource> _waiting = [];
    private int _running;

    public int Running
    {
        get { lock (_lock) return _running; }
    }

    public int Waiting
    {
        get { lock (_lock) return _waiting.Count; }
    }

    /// <summary>Waits for a slot; dispose the lease to free it.</summary>
    /// <exception cref="OnnxLMQueueFullException">The queue is full.</exception>
    public async ValueTask<Lease> EnterAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        LinkedListNode<TaskCompletionSource> node;
        lock (_lock)
        {
            if (_running < maxRunning && _waiting.Count == 0)
            {
                _running++;
                return new Lease(this);
            }

            if (_waiting.Count >= maxWaiting)
            {
                throw new OnnxLMQueueFullException(
                    $"Model '{modelId}' has {_waiting.Count} requests waiting (OnnxLMOptions.MaxQueueLength = {maxWaiting}) and {_running} running; try again later.", _waiting.Count);
            }

            node = _waiting.AddLast(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }

        await using (cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                if (node.List is null) return; // already admitted: the lease stands
                _waiting.Remove(node);
            }

            node.Value.TrySetCanceled(cancellationToken);
        }))
        {
            await node.Value.Task.ConfigureAwait(false);
        }

        return new Lease(this);
    }

    private void Release()
    {
        TaskCompletionSource? next = null;
        lock (_lock)
        {
            if (_waiting.First is { } first)
            {
                _waiting.RemoveFirst(); // the slot passes straight to the next request
                next = first.Value;
            }
            else
            {
                _running--;
            }
        }

        next?.TrySetResult();
    }

    internal sealed class Lease(RequestQueue queue) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) queue.Release();
        }
    }
}
