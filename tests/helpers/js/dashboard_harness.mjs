// Runs the dashboard's script in Node against a live server, with a minimal fake DOM.
// Usage: node dashboard_harness.mjs DASHBOARD_HTML BASE_URL API_KEY  -> prints a JSON summary.
import { readFileSync } from "node:fs";

const [, , htmlPath, base, key] = process.argv;
const html = readFileSync(htmlPath, "utf8");
const script = html.split("<script>")[1].split("</script>")[0];

class FakeNode {
  constructor(tag = "div") { this.tagName = tag; this.children = []; this.value = ""; this.hidden = false;
    this.textContent = ""; this.className = ""; this.checked = true; this.options = []; this.listeners = {}; this.style = ""; }
  append(...c) { this.children.push(...c); if (this.tagName === "select") this.options.push(...c); }
  prepend(...c) { this.children.unshift(...c); }
  replaceChildren(...c) { this.children = [...c]; }
  addEventListener(type, fn) { this.listeners[type] = fn; }
  get rows() { return this.children; }
  deleteRow() { this.children.pop(); }
  classList = { add() {}, remove() {} };
}
const byId = {};
const store = {};
globalThis.document = {
  getElementById: (id) => (byId[id] ??= new FakeNode(id.startsWith("f-") ? "select" : "div")),
  createElement: (tag) => new FakeNode(tag),
  createTextNode: (t) => ({ text: String(t) }),
};
globalThis.Node = FakeNode;
globalThis.localStorage = { getItem: (k) => store[k] ?? null, setItem: (k, v) => { store[k] = String(v); } };
globalThis.setInterval = () => 0;  // one pass is driven by hand below; no polling
const realFetch = globalThis.fetch;
const calls = [];
globalThis.fetch = (url, opts = {}) => {  // the page uses relative URLs, as a browser would resolve them
  calls.push({ url, key: (opts.headers || {})["X-API-Key"] ?? null });
  return realFetch(url.startsWith("/") ? base + url : url, opts);
};
const api = new Function(script + "\nreturn { loadEvents, loadStats, loadHealth };")();
const settle = () => new Promise((r) => setTimeout(r, 400));
await settle();
const before = { keyRowHidden: byId["key-row"].hidden, updated: byId["updated"].textContent, rows: byId["events"].rows.length };
byId["api-key"].value = key;
await api.loadEvents(); await api.loadStats(); await settle();
const rows = byId["events"].rows;
const imgs = rows.flatMap((tr) => tr.children.flatMap((td) => td.children.filter((c) => c.tagName === "a").map((a) => a.children[0])));
console.log(JSON.stringify({ before, rows: rows.length, cards: byId["cards"].children.length,
  snapshots: imgs.map((i) => ({ src: String(i.src ?? ""), alt: i.alt })), stored_key: store["maskwatch-api-key"] ?? null,
  unkeyed_data_calls: calls.filter((c) => !c.url.endsWith("/health") && c.key === null).length,
  keyed_calls: calls.filter((c) => c.key === key).length }));
