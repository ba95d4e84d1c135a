// One session of the TypeScript MCP SDK's client against a speech-tools server, as a host would
// run it: list the tools, speak, read the audio back, transcribe it, and make three typed errors.
// Prints one JSON object on stdout; the test suite asserts on it.
//
//   node mcp_session.mjs http://127.0.0.1:8000/mcp [streamable|sse]
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, kind = "streamable"] = process.argv.slice(2);
const transport =
  kind === "sse" ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "speech-tools-ts-test", version: "1.0.0" });
await client.connect(transport);

const out = {};
const tools = await client.listTools();
out.tools = tools.tools.map((t) => t.name).sort();

const spoken = await client.callTool({ name: "speak", arguments: { text: "The parcel arrives on Thursday." } });
out.speak = {
  isError: spoken.isError ?? false,
  structured: spoken.structuredContent,
  contentTypes: spoken.content.map((c) => c.type),
};
const read = await client.readResource({ uri: spoken.structuredContent.audio_uri });
out.read = { mimeType: read.contents[0].mimeType, bytes: Buffer.from(read.contents[0].blob, "base64").length };

const heard = await client.callTool({
  name: "transcribe",
  arguments: { audio_uri: spoken.structuredContent.audio_uri },
});
out.transcribe = { isError: heard.isError ?? false, structured: heard.structuredContent };

const failing = {
  voice_not_found: { name: "speak", arguments: { text: "Hello.", voice: "../../etc/passwd" } },
  invalid_argument: { name: "speak", arguments: { text: "Hello.", speed: 9 } },
  uri_forbidden: { name: "transcribe", arguments: { audio_uri: "file:///etc/passwd" } },
};
out.errors = {};
for (const [expected, call] of Object.entries(failing)) {
  try {
    const result = await client.callTool(call);
    out.errors[expected] = {
      isError: result.isError ?? false,
      text: result.content.map((c) => c.text ?? "").join(" "),
      meta: result._meta ?? null,
      structured: result.structuredContent ?? null,
    };
  } catch (error) {
    out.errors[expected] = { thrown: String(error) };
  }
}
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
