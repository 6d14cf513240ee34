using OnnxLM.Chat;

namespace OnnxLM.Tests;

public sealed class ToolCallParserTests
{
    [Fact]
    public void HermesAndQwenBlocks()
    {
        var (content, calls) = ToolCallParser.Parse(
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"zone\\\": \\\"CET\\\"}\"}\n</tool_call>");
        Assert.Equal("Let me check.", content);
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c.Name));
        Assert.Equal("Paris", calls[0].Arguments.GetProperty("location").GetString());
        Assert.Equal("CET", calls[1].Arguments.GetProperty("zone").GetString()); // arguments given as a JSON string
        Assert.All(calls, c => Assert.Matches("^[A-Za-z0-9]{9}$", c.Id!));
    }

    [Fact]
    public void MistralFormats()
    {
        var (content, calls) = ToolCallParser.Parse("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Rome\"}, \"id\": \"abcDEF123\"}]");
        Assert.Equal("", content);
        Assert.Equal(("get_weather", "abcDEF123"), (calls.Single().Name, calls[0].Id));
        (_, calls) = ToolCallParser.Parse("[TOOL_CALLS]get_weather[ARGS]{\"location\": \"Oslo\"}[TOOL_CALLS]get_time[ARGS]{}");
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c.Name));
        Assert.Equal("Oslo", calls[0].Arguments.GetProperty("location").GetString());
    }

    [Fact]
    public void LlamaJsonCalls()
    {
        var (content, calls) = ToolCallParser.Parse("<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Lima\"}}");
        Assert.Equal("", content);
        Assert.Equal("Lima", calls.Single().Arguments.GetProperty("location").GetString());
        (_, calls) = ToolCallParser.Parse(" {\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {}}}");
        Assert.Equal("f", calls.Single().Name);
    }

    [Theory]
    [InlineData("Just a sentence.")]
    [InlineData("{\"not\": \"a call\"}")]
    [InlineData("<tool_call>{broken json</tool_call>")]
    [InlineData("[TOOL_CALLS] nonsense")]
    [InlineData("[1, 2, 3]")]
    public void TextThatIsNotACallStaysContent(string text)
    {
        var (content, calls) = ToolCallParser.Parse(text);
        Assert.Empty(calls);
        Assert.Equal(text, content);
    }
}
