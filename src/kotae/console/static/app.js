// kotae's console: a page that calls only the public API (/v1/...), with the key the user
// signs in with. No framework and no build step, so the package ships it as it is.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY = "kotae.apiKey";
let apiKey = localStorage.getItem(KEY) || "";
let lastResponseId = null;
let responsesAfter = null;
let openStore = null;
let openJob = null;
let pollTimer = null;
let streamAbort = null;

// -- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${apiKey}` };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(`/v1${path}`, { method, headers, body: payload });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// Server-sent events from a fetch body: `event:` and `data:` lines, a blank line between.
async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (data && data !== "[DONE]") yield JSON.parse(data);
    }
  }
}

// -- small DOM helpers --------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function rows(table, items, cells) {
  const body = $(`${table} tbody`);
  body.replaceChildren(...items.map((item) => {
    const tr = el("tr", { "data-id": item.id });
    for (const c of cells(item)) tr.append(c instanceof Node ? el("td", {}, c) : el("td", { text: String(c ?? "") }));
    return tr;
  }));
}

const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
const showError = (where, err) => { $(where).textContent = err ? String(err.message || err) : ""; };

function options(select, values, keep) {
  const before = keep ? select.value : null;
  select.replaceChildren(...values.map(([value, label]) => el("option", { value, text: label })));
  if (before && values.some(([v]) => v === before)) select.value = before;
}

// -- signing in ---------------------------------------------------------------------------

async function signIn(key) {
  apiKey = key;
  try {
    await api("GET", "/models");
  } catch (err) {
    apiKey = "";
    localStorage.removeItem(KEY);
    showError("#sign-in-error", err.status === 401 ? "That key was refused." : err);
    return;
  }
  localStorage.setItem(KEY, key);
  showError("#sign-in-error", "");
  $("#sign-in").hidden = true;
  $("#tabs").hidden = false;
  $("#sign-out").hidden = false;
  $("#who").textContent = `${key.slice(0, 12)}…${key.slice(-4)}`;
  show("playground");
}

function signOut() {
  apiKey = "";
  localStorage.removeItem(KEY);
  location.reload();
}

const loaders = {
  playground: loadPlayground,
  responses: () => loadResponses(false),
  files: loadFiles,
  "fine-tuning": loadJobs,
  models: loadModels,
  prompts: loadPrompts,
  webhooks: loadHooks,
  keys: loadKeys,
};

function show(tab) {
  clearTimeout(pollTimer);
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.tab === tab);
  }
  loaders[tab]().catch((err) => console.error(err));
}

// -- playground ---------------------------------------------------------------------------

async function loadPlayground() {
  const [models, stores] = await Promise.all([api("GET", "/models"), api("GET", "/vector_stores?limit=100")]);
  const chat = models.data.filter((m) => !isEmbedding(m.id));
  options($("#pg-model"), chat.map((m) => [m.id, m.id]), true);
  options($("#pg-store"), stores.data.map((s) => [s.id, s.name || s.id]), true);
}

const isEmbedding = (id) => /embedding|sentence-encoder|\buse\b/i.test(id);

function requestBody() {
  const tools = [];
  if ($("#tool-file-search").checked && $("#pg-store").value) {
    tools.push({ type: "file_search", vector_store_ids: [$("#pg-store").value] });
  }
  if ($("#tool-web-search").checked) tools.push({ type: "web_search_preview" });
  if ($("#tool-image").checked) tools.push({ type: "image_generation" });
  const body = {
    model: $("#pg-model").value,
    input: $("#pg-input").value,
    stream: $("#pg-stream").checked,
    max_output_tokens: Number($("#pg-max-tokens").value) || undefined,
  };
  if ($("#pg-instructions").value.trim()) body.instructions = $("#pg-instructions").value;
  if (tools.length) body.tools = tools;
  if (tools.some((t) => t.type === "file_search")) body.include = ["file_search_call.results"];
  if ($("#pg-continue").checked && lastResponseId) body.previous_response_id = lastResponseId;
  return body;
}

function resetAnswer() {
  $("#answer").textContent = "";
  $("#pg-images").replaceChildren();
  $("#citations").replaceChildren();
  $("#timeline").replaceChildren();
  $("#pg-usage").textContent = "";
  showError("#pg-error", "");
}

function setStatus(status) {
  const s = $("#pg-status");
  s.textContent = status;
  s.dataset.status = status;
}

// One timeline row per event; a run of deltas of one kind is one row with a count.
function timeline(event, started) {
  const list = $("#timeline");
  const ms = Math.round(performance.now() - started);
  const last = list.lastElementChild;
  if (event.type.endsWith(".delta") && last && last.dataset.type === event.type) {
    const n = Number(last.dataset.count) + 1;
    last.dataset.count = n;
    last.querySelector(".count").textContent = `×${n}`;
    last.querySelector(".ms").textContent = `${ms} ms`;
    return;
  }
  list.append(el("li", { "data-type": event.type, "data-count": 1 },
    el("span", { class: "ms", text: `${ms} ms` }), " ",
    el("code", { text: event.type }), " ", el("span", { class: "count" })));
}

function addCitation(a) {
  const label = a.type === "url_citation" ? (a.title || a.url) : (a.filename || a.file_id);
  const item = el("li", { "data-type": a.type, text: label });
  if (a.url) item.replaceChildren(el("a", { href: a.url, target: "_blank", rel: "noreferrer", text: label }));
  $("#citations").append(item);
}

function showImage(b64, format) {
  const img = el("img", { src: `data:image/${format || "png"};base64,${b64}`, alt: "generated image" });
  $("#pg-images").replaceChildren(img);
}

function finish(response) {
  lastResponseId = response.id;
  setStatus(response.status);
  const u = response.usage;
  if (u) $("#pg-usage").textContent = `${response.id} · ${u.input_tokens} tokens in, ${u.output_tokens} out`;
  if (response.error) showError("#pg-error", response.error.message);
  if (response.incomplete_details) {
    $("#pg-usage").textContent += ` · incomplete: ${response.incomplete_details.reason}`;
  }
}

function render(response) {
  // A response that was not streamed: its output, as the stream would have shown it.
  for (const item of response.output || []) {
    if (item.type === "message") {
      for (const part of item.content || []) {
        if (part.type === "output_text") {
          $("#answer").textContent += part.text;
          (part.annotations || []).forEach(addCitation);
        }
      }
    } else if (item.type === "image_generation_call" && item.result) {
      showImage(item.result, item.output_format);
    }
    $("#timeline").append(el("li", { "data-type": item.type }, el("code", { text: item.type })));
  }
  finish(response);
}

async function ask(event) {
  event.preventDefault();
  resetAnswer();
  const body = requestBody();
  setStatus("sending");
  $("#pg-send").disabled = true;
  $("#pg-stop").disabled = false;
  streamAbort = new AbortController();
  const started = performance.now();
  try {
    if (!body.stream) {
      render(await api("POST", "/responses", body));
      return;
    }
    const r = await fetch("/v1/responses", {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: streamAbort.signal,
    });
    if (!r.ok) throw new ApiError(r.status, await r.json());
    for await (const e of sse(r)) {
      timeline(e, started);
      if (e.type === "response.created" || e.type === "response.in_progress") setStatus(e.response.status);
      else if (e.type === "response.output_text.delta") $("#answer").textContent += e.delta;
      else if (e.type === "response.output_text.annotation.added") addCitation(e.annotation);
      else if (e.type === "response.image_generation_call.partial_image") showImage(e.partial_image_b64, e.output_format);
      else if (e.type === "response.output_item.done" && e.item.type === "image_generation_call" && e.item.result) {
        showImage(e.item.result, e.item.output_format);
      } else if (["response.completed", "response.incomplete", "response.failed"].includes(e.type)) finish(e.response);
      else if (e.type === "error") showError("#pg-error", e.message || (e.error && e.error.message));
    }
  } catch (err) {
    if (err.name === "AbortError") setStatus("stopped");
    else { setStatus("error"); showError("#pg-error", err); }
  } finally {
    $("#pg-send").disabled = false;
    $("#pg-stop").disabled = true;
  }
}

// -- responses log ------------------------------------------------------------------------

async function loadResponses(more) {
  const query = new URLSearchParams({ limit: "20", order: "desc" });
  if (more && responsesAfter) query.set("after", responsesAfter);
  const page = await api("GET", `/responses?${query}`);
  const body = $("#responses-table tbody");
  const old = more ? [...body.children] : [];
  rows("#responses-table", page.data, (r) => [
    el("a", { href: "#", text: r.id, onclick: (e) => { e.preventDefault(); openResponse(r.id); } }),
    when(r.created_at), r.model, r.status,
    r.usage ? `${r.usage.input_tokens} / ${r.usage.output_tokens}` : "",
  ]);
  body.prepend(...old);
  responsesAfter = page.last_id;
  $("#responses-more").hidden = !page.has_more;
}

function itemText(item) {
  if (item.type === "message") {
    const parts = (item.content || []).map((p) => p.text ?? (p.type === "input_image" ? "[image]" : `[${p.type}]`));
    return `${item.role}: ${parts.join(" ")}`;
  }
  if (item.type === "file_search_call") return `file_search_call: ${(item.queries || []).join(" | ")}`;
  if (item.type === "web_search_call") return `web_search_call: ${(item.action && item.action.query) || ""}`;
  if (item.type === "function_call") return `function_call ${item.name}(${item.arguments})`;
  if (item.type === "function_call_output") return `function_call_output: ${item.output}`;
  return item.type;
}

async function openResponse(id) {
  const [r, inputs] = await Promise.all([
    api("GET", `/responses/${id}`),
    api("GET", `/responses/${id}/input_items?order=asc&limit=100`),
  ]);
  $("#response-detail").hidden = false;
  $("#response-detail-id").textContent = `${r.id} (${r.status})`;
  const u = r.usage;
  $("#response-detail-usage").textContent = u
    ? `model ${r.model} · ${u.input_tokens} tokens in, ${u.output_tokens} out, ${u.total_tokens} total`
    : `model ${r.model}`;
  $("#response-input-items").replaceChildren(...inputs.data.map((i) => el("li", { text: itemText(i) })));
  $("#response-output-items").replaceChildren(...(r.output || []).map((i) => el("li", { text: itemText(i) })));
}

// -- files and vector stores --------------------------------------------------------------

async function loadFiles() {
  const [files, stores] = await Promise.all([api("GET", "/files"), api("GET", "/vector_stores?limit=100")]);
  const checked = new Set([...document.querySelectorAll("#files-table input:checked")].map((c) => c.value));
  rows("#files-table", files.data, (f) => [
    el("input", { type: "checkbox", value: f.id, ...(checked.has(f.id) ? { checked: "" } : {}) }),
    f.filename, f.id, f.bytes, f.purpose,
    el("button", { text: "Delete", onclick: () => deleteFile(f.id) }),
  ]);
  rows("#stores-table", stores.data, (s) => [
    el("a", { href: "#", text: s.name || "(unnamed)", onclick: (e) => { e.preventDefault(); openVectorStore(s.id); } }),
    s.id, `${s.file_counts.completed} / ${s.file_counts.in_progress} / ${s.file_counts.failed}`,
    el("button", { text: "Delete", onclick: () => deleteStore(s.id) }),
  ]);
  if (stores.data.some((s) => s.file_counts.in_progress > 0)) {
    pollTimer = setTimeout(() => loadFiles().catch(console.error), 1000);
  }
  if (openStore) await openVectorStore(openStore, true);
}

// XMLHttpRequest, not fetch: only it reports upload progress.
function upload(event) {
  event.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("purpose", $("#upload-purpose").value);
  form.append("file", file);
  const bar = $("#upload-progress");
  bar.hidden = false;
  bar.value = 0;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/files");
  xhr.setRequestHeader("Authorization", `Bearer ${apiKey}`);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.onload = () => {
    const data = JSON.parse(xhr.responseText || "null");
    if (xhr.status >= 400) { showError("#files-error", new ApiError(xhr.status, data)); return; }
    bar.value = 100;
    $("#upload-note").textContent = `uploaded ${data.filename} as ${data.id}`;
    showError("#files-error", "");
    $("#upload-form").reset();
    loadFiles().catch(console.error);
  };
  xhr.onerror = () => showError("#files-error", "The upload failed (network).");
  xhr.send(form);
}

async function deleteFile(id) {
  try { await api("DELETE", `/files/${id}`); await loadFiles(); } catch (err) { showError("#files-error", err); }
}

async function deleteStore(id) {
  try {
    await api("DELETE", `/vector_stores/${id}`);
    if (openStore === id) { openStore = null; $("#store-detail").hidden = true; }
    await loadFiles();
  } catch (err) { showError("#files-error", err); }
}

async function createStore(event) {
  event.preventDefault();
  const fileIds = [...document.querySelectorAll("#files-table input:checked")].map((c) => c.value);
  try {
    const store = await api("POST", "/vector_stores", { name: $("#store-name").value, file_ids: fileIds });
    $("#store-form").reset();
    showError("#files-error", "");
    openStore = store.id;
    clearTimeout(pollTimer);
    await loadFiles();
  } catch (err) { showError("#files-error", err); }
}

async function openVectorStore(id, quiet) {
  openStore = id;
  const [store, files] = await Promise.all([
    api("GET", `/vector_stores/${id}`),
    api("GET", `/vector_stores/${id}/files?limit=100`),
  ]);
  $("#store-detail").hidden = false;
  $("#store-detail-name").textContent = `${store.name || store.id} (${store.status})`;
  $("#store-detail").dataset.id = id;
  rows("#store-files-table", files.data, (f) => [f.id, f.status, f.last_error ? f.last_error.message : ""]);
  if (!quiet) $("#search-results").replaceChildren();
}

async function searchStore(event) {
  event.preventDefault();
  try {
    const found = await api("POST", `/vector_stores/${openStore}/search`, { query: $("#search-query").value, max_num_results: 10 });
    $("#search-results").replaceChildren(...found.data.map((r) => el("li", {},
      el("strong", { text: `${r.filename} ` }), el("span", { class: "muted", text: r.score.toFixed(3) }),
      el("p", { text: r.content.map((c) => c.text).join(" ").slice(0, 400) }))));
    if (!found.data.length) $("#search-results").append(el("li", { text: "No results." }));
  } catch (err) { showError("#files-error", err); }
}

// -- fine-tuning --------------------------------------------------------------------------

async function loadJobs() {
  const [jobs, files, models] = await Promise.all([
    api("GET", "/fine_tuning/jobs?limit=50"), api("GET", "/files?purpose=fine-tune"), api("GET", "/models"),
  ]);
  options($("#ft-file"), files.data.map((f) => [f.id, `${f.filename} (${f.id})`]), true);
  options($("#ft-model"), models.data.filter((m) => m.owned_by === "kotae" && !isEmbedding(m.id)).map((m) => [m.id, m.id]), true);
  rows("#jobs-table", jobs.data, (j) => [
    el("a", { href: "#", text: j.id, onclick: (e) => { e.preventDefault(); openJob = j.id; loadJobs().catch(console.error); } }),
    j.model, j.status, j.fine_tuned_model || "", when(j.created_at),
  ]);
  const running = jobs.data.some((j) => ["validating_files", "queued", "running"].includes(j.status));
  if (openJob) await showJob(openJob);
  if (running) pollTimer = setTimeout(() => loadJobs().catch(console.error), 1500);
}

async function createJob(event) {
  event.preventDefault();
  const body = {
    training_file: $("#ft-file").value,
    model: $("#ft-model").value,
    hyperparameters: { n_epochs: Number($("#ft-epochs").value) || 3 },
  };
  if ($("#ft-suffix").value) body.suffix = $("#ft-suffix").value;
  try {
    const job = await api("POST", "/fine_tuning/jobs", body);
    showError("#ft-error", "");
    openJob = job.id;
    clearTimeout(pollTimer);
    await loadJobs();
  } catch (err) { showError("#ft-error", err); }
}

async function showJob(id) {
  const [job, events, checkpoints] = await Promise.all([
    api("GET", `/fine_tuning/jobs/${id}`),
    api("GET", `/fine_tuning/jobs/${id}/events?limit=100`),
    api("GET", `/fine_tuning/jobs/${id}/checkpoints?limit=100`),
  ]);
  $("#job-detail").hidden = false;
  $("#job-detail").dataset.id = id;
  $("#job-detail-id").textContent = job.id;
  $("#job-detail-status").textContent = `${job.status}${job.fine_tuned_model ? ` → ${job.fine_tuned_model}` : ""}${job.error && job.error.message ? ` · ${job.error.message}` : ""}`;
  $("#job-detail-status").dataset.status = job.status;
  $("#job-cancel").hidden = !["validating_files", "queued", "running", "paused"].includes(job.status);
  const ordered = [...events.data].reverse(); // the API lists newest first
  $("#job-events").replaceChildren(...ordered.map((e) => el("li", { "data-type": e.type, text: `${when(e.created_at)} ${e.message}` })));
  lossChart(ordered.filter((e) => e.type === "metrics" && e.data && e.data.train_loss !== undefined).map((e) => [e.data.step, e.data.train_loss]));
  rows("#checkpoints-table", checkpoints.data, (c) => [c.step_number, c.fine_tuned_model_checkpoint, c.metrics && c.metrics.train_loss !== undefined ? Number(c.metrics.train_loss).toFixed(4) : ""]);
}

function lossChart(points) {
  const svg = $("#loss-chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  svg.dataset.points = points.length;
  if (!points.length) return;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const x = (v) => 10 + (580 * (v - x0)) / (x1 - x0 || 1);
  const y = (v) => 190 - (180 * (v - y0)) / (y1 - y0 || 1);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map(([a, b]) => `${x(a)},${y(b)}`).join(" "));
  line.setAttribute("class", "loss");
  svg.append(line);
  const label = (text, lx, ly, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", lx); t.setAttribute("y", ly); t.setAttribute("text-anchor", anchor);
    t.textContent = text;
    svg.append(t);
  };
  label(y1.toFixed(3), 14, 14, "start");
  label(y0.toFixed(3), 14, 186, "start");
  label(`step ${x1}`, 586, 186, "end");
  for (const [a, b] of points) {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x(a)); dot.setAttribute("cy", y(b)); dot.setAttribute("r", 3);
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `step ${a}: ${b.toFixed(4)}`;
    dot.append(tip);
    svg.append(dot);
  }
}

async function cancelJob() {
  try { await api("POST", `/fine_tuning/jobs/${openJob}/cancel`); await loadJobs(); } catch (err) { showError("#ft-error", err); }
}

// -- models -------------------------------------------------------------------------------

async function loadModels() {
  const models = await api("GET", "/models");
  const kind = (m) => m.id.startsWith("ft:") ? "fine-tuned"
    : m.owned_by.startsWith("kotae:alias-of:") ? `alias of ${m.owned_by.slice(15)}`
      : isEmbedding(m.id) ? "embeddings" : "model";
  rows("#models-table", models.data, (m) => [
    m.id, kind(m), m.owned_by, when(m.created),
    m.id.startsWith("ft:") ? el("button", { text: "Delete", onclick: () => deleteModel(m.id) }) : "",
  ]);
}

async function deleteModel(id) {
  if (!confirm(`Delete ${id}?`)) return;
  try { await api("DELETE", `/models/${encodeURIComponent(id)}`); await loadModels(); } catch (err) { showError("#models-error", err); }
}

// -- prompts (the project's reusable prompts, each with its versions) ----------------------

async function loadPrompts() {
  try {
    const list = await api("GET", "/prompts?limit=100");
    rows("#prompts-table", list.data, (p) => [
      p.id, p.version, p.name || "", p.model || "", (p.instructions || "").slice(0, 80),
      Object.keys(p.variables || {}).join(", "), when(p.created_at),
      el("span", {},
        el("button", { text: "Edit", onclick: () => editPrompt(p) }),
        el("button", { text: "Delete", onclick: () => deletePrompt(p.id) })),
    ]);
    showError("#prompts-error", "");
  } catch (err) { showError("#prompts-error", err); }
}

function editPrompt(p) {
  $("#prompt-id").value = p.id;
  $("#prompt-name").value = p.name || "";
  $("#prompt-model").value = p.model || "";
  $("#prompt-instructions").value = p.instructions || "";
  $("#prompt-variables").value = p.variables ? JSON.stringify(p.variables) : "";
}

async function savePrompt(event) {
  event.preventDefault();
  try {
    const body = { instructions: $("#prompt-instructions").value };
    for (const [field, id] of [["name", "#prompt-name"], ["model", "#prompt-model"]]) {
      if ($(id).value.trim()) body[field] = $(id).value.trim();
    }
    if ($("#prompt-variables").value.trim()) {
      try { body.variables = JSON.parse($("#prompt-variables").value); } catch (err) {
        throw new Error("The variables are not JSON: " + err.message);
      }
    }
    const id = $("#prompt-id").value.trim();
    const saved = await api("POST", id ? `/prompts/${encodeURIComponent(id)}/versions` : "/prompts", body);
    $("#prompt-id").value = saved.id;
    await loadPrompts();
  } catch (err) { showError("#prompts-error", err); }
}

async function deletePrompt(id) {
  if (!confirm(`Delete ${id} and all its versions?`)) return;
  try { await api("DELETE", `/prompts/${encodeURIComponent(id)}`); await loadPrompts(); } catch (err) { showError("#prompts-error", err); }
}

// -- webhooks (the project's endpoints and its delivery log) -------------------------------

async function loadHooks() {
  try {
    const hooks = await api("GET", "/webhook_endpoints?limit=100");
    rows("#hooks-table", hooks.data, (h) => [
      h.id, h.url, h.event_types.join(", "), h.signing_secret_hint, when(h.created_at),
      el("button", { text: "Delete", onclick: () => deleteHook(h.id) }),
    ]);
    const log = await api("GET", "/webhook_deliveries?limit=100");
    rows("#deliveries-table", log.data, (d) => [
      d.event.type, d.event.data.id, d.webhook_endpoint_id, d.status, d.attempts,
      d.last_error || d.last_status_code || "", when(d.created_at),
    ]);
    showError("#hooks-error", "");
  } catch (err) { showError("#hooks-error", err); }
}

async function createHook(event) {
  event.preventDefault();
  try {
    const events = $("#hook-events").value.split(",").map((e) => e.trim()).filter(Boolean);
    const made = await api("POST", "/webhook_endpoints", {
      url: $("#hook-url").value, name: $("#hook-name").value || $("#hook-url").value, event_types: events,
    });
    $("#hook-created").textContent = `Signing secret (copy it now, it is not shown again): ${made.signing_secret}`;
    await loadHooks();
  } catch (err) { showError("#hooks-error", err); }
}

async function deleteHook(id) {
  if (!confirm(`Delete ${id}?`)) return;
  try { await api("DELETE", `/webhook_endpoints/${id}`); await loadHooks(); } catch (err) { showError("#hooks-error", err); }
}

// -- keys (an admin key's view of projects and their keys) --------------------------------

async function loadKeys() {
  let projects;
  try {
    projects = await api("GET", "/organization/projects?limit=100");
  } catch (err) {
    $("#key-form").hidden = true;
    rows("#keys-table", [], () => []);
    $("#keys-note").textContent = err.status === 403
      ? "Keys are for an admin: this key is not an admin key (kotae keys create --admin)."
      : String(err.message);
    return;
  }
  $("#keys-note").textContent = `${projects.data.length} project(s). A new key is shown once.`;
  $("#key-form").hidden = false;
  options($("#key-project"), projects.data.map((p) => [p.id, p.name]), true);
  const keys = [];
  for (const p of projects.data) {
    const page = await api("GET", `/organization/projects/${p.id}/api_keys?limit=100`);
    keys.push(...page.data.map((k) => ({ ...k, project: p })));
  }
  rows("#keys-table", keys, (k) => [
    k.project.name, k.id, k.redacted_value, k.name, when(k.created_at),
    el("button", { text: "Revoke", onclick: () => revokeKey(k.project.id, k.id) }),
  ]);
}

async function createKey(event) {
  event.preventDefault();
  try {
    const key = await api("POST", `/organization/projects/${$("#key-project").value}/api_keys`, { name: $("#key-name").value });
    $("#key-created").textContent = `New key (copy it now, it is not shown again): ${key.value}`;
    showError("#keys-error", "");
    await loadKeys();
  } catch (err) { showError("#keys-error", err); }
}

async function revokeKey(project, id) {
  if (!confirm(`Revoke ${id}?`)) return;
  try { await api("DELETE", `/organization/projects/${project}/api_keys/${id}`); await loadKeys(); } catch (err) { showError("#keys-error", err); }
}

// -- wiring -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#api-key").value.trim()); });
  $("#sign-out").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("#ask-form").addEventListener("submit", ask);
  $("#pg-stop").addEventListener("click", () => streamAbort && streamAbort.abort());
  $("#responses-more").addEventListener("click", () => loadResponses(true));
  $("#upload-form").addEventListener("submit", upload);
  $("#store-form").addEventListener("submit", createStore);
  $("#search-form").addEventListener("submit", searchStore);
  $("#ft-form").addEventListener("submit", createJob);
  $("#job-cancel").addEventListener("click", cancelJob);
  $("#key-form").addEventListener("submit", createKey);
  $("#hook-form").addEventListener("submit", createHook);
  $("#prompt-form").addEventListener("submit", savePrompt);
  if (apiKey) signIn(apiKey);
});
