// The nmtkit page: translate lines through /v1/translate and show, for one line at a time,
// the attention of the best hypothesis (SVG heatmap), the n-best list, and greedy vs beam.
// Plain DOM, no dependencies; API text is only ever set as textContent.
"use strict";

const KEY_STORAGE = "nmtkit-api-key";
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let models = [];   // /v1/models
let results = [];  // one {beam, greedy, beamSize} per translated line
let keyPrompt = null;  // the pending "enter the API key" promise, shared by all callers

// ---- API ------------------------------------------------------------------------------

// GET (no body) or POST JSON; on 401 asks for the key and retries; other errors throw
// an Error carrying the API's `error` message.
async function api(path, body) {
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const headers = {};
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method: body === undefined ? "GET" : "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(`cannot reach the server (${err.message})`);
    }
    if (response.status === 401) {
      if (sessionStorage.getItem(KEY_STORAGE) !== key) continue;  // a new key came meanwhile
      if (key) sessionStorage.removeItem(KEY_STORAGE);
      await askForKey(key ? "The server refused that key; check it and try again."
                          : "This server needs an API key.");
      continue;
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON: fall back to the status line below
    }
    if (!response.ok) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }
}

function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const form = $("auth");
  $("auth-message").textContent = message;
  form.hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
  keyPrompt = new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      form.hidden = true;
      form.onsubmit = null;
      keyPrompt = null;
      resolve();
    };
  });
  return keyPrompt;
}

// ---- models ---------------------------------------------------------------------------

async function loadModels() {
  try {
    models = await api("v1/models");
  } catch (err) {
    showError(`Could not list the models: ${err.message}`);
    return;
  }
  const select = $("model");
  select.replaceChildren(...models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.src_lang} → ${m.tgt_lang})`;
    return option;
  }));
  modelChanged();
}

function modelChanged() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("beam").value = m.decode.beam_size;
  const params = m.parameters >= 1e6 ? `${(m.parameters / 1e6).toFixed(1)} M`
                                     : `${(m.parameters / 1e3).toFixed(0)} k`;
  $("model-info").textContent =
    `${m.src_lang} → ${m.tgt_lang} · ${params} parameters · vocabulary ` +
    `${m.vocab_size.src} / ${m.vocab_size.tgt} · defaults: beam ${m.decode.beam_size}, ` +
    `length penalty α ${m.decode.alpha}`;
}

// ---- translate ------------------------------------------------------------------------

async function translate() {
  if ($("translate").disabled) return;  // one request at a time
  const lines = $("source").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!lines.length) return showError("Type a sentence to translate.");
  const beam = Number($("beam").value);
  if (!Number.isInteger(beam) || beam < 1 || beam > 64) {
    return showError("The beam size is a whole number from 1 to 64.");
  }
  const model = $("model").value || null;
  const button = $("translate");
  clearError();
  button.disabled = true;
  button.textContent = "Translating…";
  $("results").setAttribute("aria-busy", "true");
  try {
    const [byBeam, byGreedy] = await Promise.all([
      api("v1/translate", { model, text: lines, beam, nbest: Math.min(beam, 5), attention: true }),
      api("v1/translate", { model, text: lines, greedy: true }),
    ]);
    results = byBeam.results.map((r, i) => ({ beam: r, greedy: byGreedy.results[i], beamSize: beam }));
    renderOutput();
    showLine(0);
  } catch (err) {
    results = [];
    $("results").hidden = true;  // no stale translations next to the error
    $("details").hidden = true;
    showError(err.message);
  } finally {
    button.disabled = false;
    button.textContent = "Translate";
    $("results").removeAttribute("aria-busy");
  }
}

const best = (result) => result.nbest[0] || { text: "", score: 0, log_prob: 0 };

function renderOutput() {
  const items = results.map((r, i) => {
    const li = el("li", "line");
    li.append(el("p", "source-text", r.beam.source));
    const out = el("p", "translation", best(r.beam).text || "(empty)");
    if (r.beam.truncated) out.append(el("span", "badge", "truncated"));
    li.append(out);
    if (results.length > 1) {
      const pick = el("button", "pick", "details");
      pick.type = "button";
      pick.setAttribute("aria-label", `details of line ${i + 1}`);
      pick.onclick = () => showLine(i);
      li.append(pick);
    }
    return li;
  });
  $("output").replaceChildren(...items);
  $("results").hidden = false;
}

function showLine(i) {
  const r = results[i];
  document.querySelectorAll("#output .line").forEach((li, j) => {
    li.classList.toggle("selected", j === i && results.length > 1);
    const pick = li.querySelector(".pick");
    if (pick) pick.setAttribute("aria-pressed", String(j === i));
  });
  $("details-title").textContent =
    `${results.length > 1 ? `Line ${i + 1}` : "Details"}: ${r.beam.source}`;
  renderGreedyVsBeam(r);
  renderNbest(r.beam);
  const att = $("attention");
  att.replaceChildren(r.beam.attention ? heatmap(r.beam.attention)
                                       : el("p", "hint", "No attention for this line."));
  $("details").hidden = false;
}

function scoreLine(hyp) {
  return `log p ${fmt(hyp.log_prob)} · score ${fmt(hyp.score)}`;
}

function renderNbest(result) {
  $("nbest").replaceChildren(...result.nbest.map((h) => {
    const li = el("li");
    li.append(el("span", "hyp-text", h.text || "(empty)"), el("span", "score", scoreLine(h)));
    return li;
  }));
}

function renderGreedyVsBeam(r) {
  const greedy = best(r.greedy);
  const beam = best(r.beam);
  const diff = beam.log_prob - greedy.log_prob;
  const same = greedy.text === beam.text;
  const preferred = same ? null : diff >= 0 ? "beam" : "greedy";
  const box = (kind, title, hyp) => {
    const div = el("div", `output ${kind}` + (preferred === kind ? " preferred" : ""));
    const h = el("h4", null, title);
    if (preferred === kind) h.append(el("span", "badge", "model prefers"));
    div.append(h, el("p", "hyp-text", hyp.text || "(empty)"), el("p", "score", scoreLine(hyp)));
    return div;
  };
  let verdict;
  if (same) {
    verdict = "Both searches give the same sentence: here greedy's word-by-word choices " +
              "were already the best the beam found.";
  } else if (diff >= 0) {
    verdict = `The model prefers the beam search output: its log-probability is higher by ` +
              `${diff.toFixed(2)} (${times(Math.exp(diff))} as likely). Greedy committed ` +
              `to the locally best word at each step; the beam kept alternatives and recovered ` +
              `a better sentence.`;
  } else {
    verdict = `Greedy's sentence has the higher log-probability (by ${(-diff).toFixed(2)}); ` +
              `beam search ranks finished hypotheses by the length-normalised score instead.`;
  }
  $("greedy-vs-beam").replaceChildren(
    el("div", "pair", null, [box("greedy", "Greedy", greedy),
                             box("beam", `Beam search (beam ${r.beamSize})`, beam)]),
    el("p", "verdict", verdict),
  );
}

// ---- the heatmap ----------------------------------------------------------------------

function heatmap(att) {
  const rows = att.target.length;
  const cols = att.source.length;
  const cell = 28;
  const charWidth = 7.5;  // at the 12px label font
  const longest = (pieces) => Math.max(1, ...pieces.map((p) => [...p].length)) * charWidth;
  const left = Math.ceil(longest(att.target)) + 14;
  const slant = Math.ceil(longest(att.source) * Math.SQRT1_2);  // column labels at 45°
  const top = slant + 16;
  const width = left + cols * cell + slant + 10;
  const height = top + rows * cell + 6;

  const svg = svgEl("svg", {
    id: "heatmap", class: "heatmap", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "data-rows": rows, "data-cols": cols,
    "aria-label": `Attention weights: ${rows} target pieces by ${cols} source pieces`,
  });
  svgEl("title", {}, svg).textContent = "Attention of the best hypothesis";

  const colLabels = svgEl("g", { class: "col-labels" }, svg);
  att.source.forEach((piece, j) => {
    const x = left + j * cell + cell / 2;
    const y = top - 6;
    svgEl("text", { x, y, transform: `rotate(-45 ${x} ${y})` }, colLabels).textContent = piece;
  });
  const rowLabels = svgEl("g", { class: "row-labels" }, svg);
  att.target.forEach((piece, i) => {
    svgEl("text", { x: left - 8, y: top + i * cell + cell / 2 }, rowLabels).textContent = piece;
  });
  const cells = svgEl("g", { class: "cells" }, svg);
  att.weights.forEach((row, i) => row.forEach((w, j) => {
    const rect = svgEl("rect", {
      class: "cell", x: left + j * cell, y: top + i * cell, width: cell, height: cell,
      fill: shade(w), "data-weight": w,
    }, cells);
    svgEl("title", {}, rect).textContent = `${att.source[j]} → ${att.target[i]}: ${w.toFixed(3)}`;
  }));
  return svg;
}

// weight 0..1 -> from near-white to deep blue
function shade(w) {
  const t = Math.min(1, Math.max(0, w));
  const from = [246, 248, 252];
  const to = [29, 64, 175];
  const c = from.map((f, k) => Math.round(f + (to[k] - f) * t));
  return `rgb(${c.join(",")})`;
}

// ---- small helpers --------------------------------------------------------------------

function el(tag, className, text, children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  if (children) node.append(...children);
  return node;
}

function svgEl(tag, attrs, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.append(node);
  return node;
}

// a likelihood ratio: "3.2×", "450×", "about 10⁹×"
const times = (r) =>
  r < 10 ? `${r.toFixed(1)}×`
    : r < 1e4 ? `${Number(r.toPrecision(2)).toLocaleString("en")}×`
    : `about 10${[...String(Math.round(Math.log10(r)))].map((d) => "⁰¹²³⁴⁵⁶⁷⁸⁹"[d]).join("")}×`;
const fmt = (x) => x.toFixed(3).replace("-", "−");

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---- wiring ---------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("translate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    translate();
  });
  $("source").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("translate-form").requestSubmit();
    }
  });
  $("model").addEventListener("change", modelChanged);
  loadModels();
});
