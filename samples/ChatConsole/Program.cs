using System.ComponentModel;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OnnxLM.Hosting;

// Register the model, wrap its IChatClient in function invocation, and chat: each line you type is a user turn.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
builder.Services.AddOnnxLM(o => o.ModelPath = SampleModel.Find(args));
builder.Services.AddChatClient(sp => sp.GetRequiredService<OnnxLMChatClient>()).UseFunctionInvocation();
using var host = builder.Build();
await host.StartAsync();

var chat = host.Services.GetRequiredService<IChatClient>();
var options = new ChatOptions { MaxOutputTokens = 200, Tools = [AIFunctionFactory.Create(Now)] };
List<ChatMessage> history = [new(ChatRole.System, "You are a helpful assistant. Call tools when they help.")];
Console.WriteLine("Type a message (empty line to quit).");
while (Console.ReadLine() is { Length: > 0 } line)
{
    history.Add(new ChatMessage(ChatRole.User, line));
    var updates = new List<ChatResponseUpdate>();
    await foreach (var update in chat.GetStreamingResponseAsync(history, options))
    {
        Console.Write(update.Text);
        updates.Add(update);
    }

    Console.WriteLine();
    history.AddMessages(updates); // keeps the tool calls and results too, so the next turn reuses the cached prefix
}

await host.StopAsync();

[Description("The current date and time.")]
static string Now() => DateTimeOffset.Now.ToString("f");
