// A real model behind the OpenAI chat API, on 127.0.0.1, for the real_model tests.
//
//   node server.mjs --model /path/to/model.gguf [--port 0] [--context 4096] [--threads 1]
//
// Prints one line `{"port": N}` on stdout once the model is loaded and the server listens.
// POST /v1/chat/completions (messages with system/user/assistant roles, temperature,
// max_tokens, seed) answers with choices[0].message.content, finish_reason ("stop" or
// "length") and usage (prompt/completion tokens counted by the model's own tokenizer).
// GET /v1/models lists the one model. Requests are answered one at a time (one sequence).
import http from "node:http";
import { parseArgs } from "node:util";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    port: { type: "string", default: "0" },
    context: { type: "string", default: "4096" },
    threads: { type: "string", default: "1" },
  },
});
if (!values.model) {
  console.error("usage: node server.mjs --model PATH.gguf [--port N] [--context N]");
  process.exit(2);
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: values.model });
const context = await model.createContext({
  contextSize: Number(values.context),
  threads: Number(values.threads), // more threads than free cores makes llama.cpp crawl
});
const sequence = context.getSequence();
const modelName = values.model.split("/").pop().replace(/\.gguf$/, "");
let queue = Promise.resolve();

function countTokens(text) {
  return text ? model.tokenize(text).length : 0;
}

async function complete(body) {
  const messages = body.messages;
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n");
  const turns = messages.filter((m) => m.role !== "system");
  const last = turns.pop();
  if (!last || last.role !== "user") throw new RangeError("the last message must be a user message");
  const history = [];
  if (system) history.push({ type: "system", text: system });
  for (const m of turns) {
    if (m.role === "user") history.push({ type: "user", text: String(m.content) });
    else history.push({ type: "model", response: [String(m.content)] });
  }
  await sequence.clearHistory();
  const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    if (history.length) session.setChatHistory(history);
    const options = { temperature: Number(body.temperature ?? 0) };
    if (body.max_tokens != null) options.maxTokens = Number(body.max_tokens);
    if (body.seed != null) options.seed = Number(body.seed);
    const result = await session.promptWithMeta(String(last.content), options);
    const text = result.responseText;
    const promptTokens =
      countTokens(system) + messages.reduce((n, m) => n + countTokens(String(m.content)) + 4, 0);
    return {
      id: `chatcmpl-${Date.now()}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: body.model || modelName,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: text },
          finish_reason: result.stopReason === "maxTokens" ? "length" : "stop",
        },
      ],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: countTokens(text),
        total_tokens: promptTokens + countTokens(text),
      },
    };
  } finally {
    session.dispose({ disposeSequence: false });
  }
}

function send(res, status, payload) {
  const data = JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/v1/models") {
    send(res, 200, { object: "list", data: [{ id: modelName, object: "model", owned_by: "local" }] });
    return;
  }
  if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
    send(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: "not_found" } });
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      if (!Array.isArray(body.messages)) throw new Error("'messages' is a required property");
    } catch (err) {
      send(res, 400, { error: { message: String(err.message), type: "invalid_request_error" } });
      return;
    }
    queue = queue.then(async () => {
      try {
        send(res, 200, await complete(body));
      } catch (err) {
        const status = err instanceof RangeError || /context/i.test(String(err.message)) ? 400 : 500;
        send(res, status, { error: { message: String(err.message), type: "server_error" } });
      }
    });
  });
});

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    server.close();
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.exit(0);
  });
}
