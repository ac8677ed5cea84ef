// An editor, as far as the schema is concerned: starts the real
// yaml-language-server (what VS Code's YAML extension runs) on stdio, opens
// one YAML file from disk (its modeline names the schema, relative to it),
// and prints, as one JSON object, the diagnostics the server publishes and
// the completions it offers at LINE:COLUMN (0-based; optional).
//
//   node yaml_language_server.mjs FILE [LINE:COLUMN]
//
// The package is installed under .clients/node (CLIENTS_NODE).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [file, at] = process.argv.slice(2);
const require = createRequire(`${process.env.CLIENTS_NODE}/`);
const server = spawn(process.execPath, [require.resolve("yaml-language-server/bin/yaml-language-server"), "--stdio"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const uri = pathToFileURL(path.resolve(file)).href;
const settings = { yaml: { validate: true, completion: true, hover: true, schemaStore: { enable: false } } };

let nextId = 1;
const pending = new Map();
function send(message) {
  const body = JSON.stringify({ jsonrpc: "2.0", ...message });
  server.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
function request(method, params) {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((resolve) => pending.set(id, resolve));
}

let diagnostics;
let published;
const diagnosed = new Promise((resolve) => (published = resolve));
let buffer = Buffer.alloc(0);
server.stdout.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, end).toString())[1]);
    if (buffer.length < end + 4 + length) return;
    const message = JSON.parse(buffer.subarray(end + 4, end + 4 + length).toString());
    buffer = buffer.subarray(end + 4 + length);
    if (message.id !== undefined && message.method) {
      // The server asks for its settings (and to register capabilities).
      const result = message.method === "workspace/configuration" ? message.params.items.map(() => settings.yaml) : null;
      send({ id: message.id, result });
    } else if (message.id !== undefined) {
      pending.get(message.id)?.(message.result);
    } else if (message.method === "textDocument/publishDiagnostics" && message.params.uri === uri) {
      diagnostics = message.params.diagnostics;
      published();
    }
  }
});

const deadline = setTimeout(() => {
  console.error("yaml-language-server published no diagnostics within 60 s");
  process.exit(2);
}, 60000);

await request("initialize", {
  processId: process.pid,
  rootUri: pathToFileURL(path.dirname(path.resolve(file))).href,
  capabilities: { workspace: { configuration: true }, textDocument: { completion: { completionItem: {} } } },
});
send({ method: "initialized", params: {} });
send({ method: "workspace/didChangeConfiguration", params: { settings } });
send({
  method: "textDocument/didOpen",
  params: { textDocument: { uri, languageId: "yaml", version: 1, text: readFileSync(file, "utf8") } },
});
await diagnosed;
let completions = null;
if (at) {
  const [line, character] = at.split(":").map(Number);
  const result = await request("textDocument/completion", { textDocument: { uri }, position: { line, character } });
  completions = (Array.isArray(result) ? result : result.items).map((item) => item.label).sort();
}
clearTimeout(deadline);
console.log(
  JSON.stringify({
    diagnostics: diagnostics.map((d) => ({ line: d.range.start.line, message: d.message })),
    completions,
  }),
);
server.kill();
process.exit(0);
