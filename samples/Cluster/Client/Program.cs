using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

// Three conversations of three turns through the gateway; each reply says how much of its prompt the replica had cached.
var gateway = Environment.GetEnvironmentVariable("services__gateway__http__0") ?? (args.Length > 0 ? args[0] : "http://127.0.0.1:8080");
IChatClient client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(new Uri(gateway), "/v1") })
    .GetChatClient("kjv-tiny").AsIChatClient();
for (var c = 0; c < 3; c++)
{
    List<ChatMessage> messages = [new(ChatRole.System, "You answer in the words of the King James Bible."), new(ChatRole.User, $"Tell me of the light, part {c}.")];
    for (var turn = 1; turn <= 3; turn++)
    {
        var response = await client.GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = 12, Temperature = 0 });
        Console.WriteLine($"conversation {c} turn {turn}: {response.Usage?.CachedInputTokenCount ?? 0} of {response.Usage?.InputTokenCount} prompt tokens cached: {response.Text}");
        messages.AddMessages(response);
        messages.Add(new(ChatRole.User, "And then?"));
    }
}
