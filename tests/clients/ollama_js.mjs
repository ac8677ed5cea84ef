// ollama-js with the key in `headers`. The package is installed under
// .clients/node (CLIENTS_NODE), not next to this file.
import { createRequire } from 'node:module';

const { Ollama } = createRequire(`${process.env.CLIENTS_NODE}/`)('ollama');

const client = new Ollama({ host: process.env.OLLAMA_URL, headers: { Authorization: `Bearer ${process.env.KEY}` } });
const models = (await client.list()).models.map((m) => m.model);
const tokens = [];
const stream = await client.chat({
  model: process.argv[2],
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
  stream: true,
});
for await (const part of stream) {
  if (part.message.content) tokens.push(part.message.content);
}
let wrong = 'accepted';
try {
  await new Ollama({ host: process.env.OLLAMA_URL, headers: { Authorization: 'Bearer osk_wrong' } }).list();
} catch (e) {
  wrong = e.status_code;
}
console.log(JSON.stringify({ models, tokens, wrong_key: wrong }));
