// The case viewer's page: builds one image + mask input pair per modality of the model, posts them to
// /api/predict and draws the answer. Text from the server is always set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "n/a";
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e4 || size < 1e-3)) return value.toExponential(3);
  return value.toPrecision(4);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function describeModel(model) {
  const configuration = model.configuration || {};
  const parts = [];
  if (configuration.source) parts.push(`${configuration.source} features`);
  if (configuration.fusion && configuration.fusion !== "single") parts.push(`${configuration.fusion} fusion`);
  if (configuration.classifier) parts.push(configuration.classifier);
  const trained = model.trained_on && model.trained_on.patients ? `, trained on ${model.trained_on.patients} patients` : "";
  $("model-summary").textContent =
    `Model: ${parts.join(", ") || "fitted bundle"} on ${model.modalities.join(" + ")}${trained}; ` +
    `frozen threshold ${model.threshold.toFixed(3)}.`;
}

function buildInputs(model) {
  const holder = $("modality-inputs");
  for (const modality of model.modalities) {
    const fieldset = element("fieldset");
    fieldset.append(element("legend", modality));
    for (const role of ["image", "mask"]) {
      const label = element("label", `${role}: `);
      label.append(element("input", null, { type: "file", name: `${modality}.${role}`, id: `${modality}-${role}` }));
      fieldset.append(label);
    }
    holder.append(fieldset);
  }
}

function renderParts(parts) {
  const body = $("parts").querySelector("tbody");
  body.replaceChildren();
  for (const part of parts) {
    const row = element("tr");
    row.append(element("td", part.block), element("td", part.probability.toFixed(3)),
      element("td", part.weight === null || part.weight === undefined ? "" : part.weight.toFixed(3)));
    body.append(row);
  }
}

function renderGallery(holderId, images, caption, emptyText) {
  const holder = $(holderId);
  holder.replaceChildren();
  if (!images.length) {
    holder.append(element("p", emptyText, { class: "empty" }));
    return;
  }
  for (const item of images) {
    const figure = element("figure");
    figure.append(element("img", null, { src: item.image, alt: caption(item) }), element("figcaption", caption(item)));
    holder.append(figure);
  }
}

function featureStrip(feature) {
  // One horizontal axis holding the training band [low, high] and the case's value.
  const width = 420, height = 26, pad = 8;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const values = [feature.value];
  if (feature.low !== null) values.push(feature.low, feature.high);
  if (feature.centre !== null) values.push(feature.centre);
  let min = Math.min(...values), max = Math.max(...values);
  const margin = (max - min) * 0.08 || Math.abs(max) * 0.1 || 1;
  min -= margin; max += margin;
  const x = (v) => pad + ((v - min) / (max - min)) * (width - 2 * pad);
  const shape = (tag, attributes) => {
    const node = document.createElementNS(ns, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    svg.append(node);
  };
  shape("line", { x1: pad, x2: width - pad, y1: height / 2, y2: height / 2, stroke: "#99a", "stroke-width": 1 });
  if (feature.low !== null) {
    shape("rect", { x: x(feature.low), y: 6, width: Math.max(1, x(feature.high) - x(feature.low)), height: height - 12,
      fill: "#cfe0f3", stroke: "#7fa5cf" });
  }
  if (feature.centre !== null) {
    shape("line", { x1: x(feature.centre), x2: x(feature.centre), y1: 4, y2: height - 4, stroke: "#3d6a9e", "stroke-width": 2 });
  }
  shape("circle", { cx: x(feature.value), cy: height / 2, r: 5, fill: feature.outside ? "#c0392b" : "#1d2430" });
  svg.setAttribute("aria-label", `${feature.feature}: ${formatNumber(feature.value)}`);
  return svg;
}

function renderFeatures(features) {
  const holder = $("features");
  holder.replaceChildren();
  if (!features.length) {
    holder.append(element("p", "No named features to place: the model reads deep features or PCA components " +
      "(see Grad-CAM), or the case could not be scored.", { class: "empty" }));
    return;
  }
  for (const feature of features) {
    const row = element("div", null, { class: "feature", "data-column": feature.column });
    const weight = feature.weight === null ? "" : `, weight ${feature.weight >= 0 ? "+" : ""}${feature.weight.toFixed(2)}`;
    row.append(element("div", `${feature.block}: ${feature.feature}${weight}`, { class: "name" }));
    row.append(featureStrip(feature));
    let detail = `case ${formatNumber(feature.value)}; ${feature.reference}`;
    if (feature.low !== null) detail += ` ${formatNumber(feature.low)} to ${formatNumber(feature.high)}`;
    else if (feature.centre !== null) detail += ` ${formatNumber(feature.centre)}`;
    if (feature.z_score !== null) detail += `; ${feature.z_score >= 0 ? "+" : ""}${feature.z_score.toFixed(1)} SD from the training mean`;
    if (feature.outside) detail += " (outside)";
    row.append(element("div", detail, { class: "detail" }));
    holder.append(row);
  }
}

function renderList(id, messages) {
  const list = $(id);
  list.replaceChildren(...messages.map((message) => element("li", message)));
}

function renderResult(result) {
  const probability = $("probability");
  const called = $("predicted-class");
  $("threshold").textContent = `(${result.threshold.toFixed(3)})`;
  probability.textContent = result.probability === null ? "none" : result.probability.toFixed(3);
  probability.dataset.probability = result.probability === null ? "" : String(result.probability);
  called.textContent = result.class_name || "none";
  called.className = `predicted-class ${result.class_name}`;
  const warnings = [...result.warnings];
  if (result.modalities_missing.length) {
    warnings.push(`Not uploaded: ${result.modalities_missing.join(", ")}; the result uses ${result.modalities_used.join(", ")} only.`);
  }
  renderList("warnings", warnings);
  renderList("notices", result.notices);
  renderParts(result.parts);
  renderGallery("previews", result.previews, (item) => `${item.modality}: image with the mask's outline`, "");
  renderGallery("gradcam", result.gradcam,
    (item) => `${item.modality}: Grad-CAM of the ${item.modality} deep head` +
      (item.probability === null ? "" : ` (head probability ${item.probability.toFixed(3)})`),
    "This model has no deep part to explain with Grad-CAM.");
  renderFeatures(result.features);
  $("result").hidden = false;
}

async function submitCase(event) {
  event.preventDefault();
  showError("");
  $("result").hidden = true;
  $("predict-button").disabled = true;
  $("status").textContent = "Computing features and the prediction\u2026";
  try {
    const response = await fetch("/api/predict", { method: "POST", body: new FormData($("case-form")) });
    let answer;
    try {
      answer = await response.json();
    } catch (error) {
      throw new Error(`the server answered ${response.status} without a result`);
    }
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
    if (answer.probability === null) showError(`No probability for this case: ${answer.reason}`);
    renderResult(answer);
    $("status").textContent = "Done.";
  } catch (error) {
    showError(error.message);
    $("status").textContent = "";
  } finally {
    $("predict-button").disabled = false;
  }
}

async function start() {
  try {
    const response = await fetch("/api/model");
    const model = await response.json();
    describeModel(model);
    buildInputs(model);
    renderList("model-notices", model.notices || []);
    $("case-form").addEventListener("submit", submitCase);
    $("predict-button").disabled = false;
  } catch (error) {
    showError(`The model description could not be loaded: ${error.message}`);
  }
}

document.addEventListener("DOMContentLoaded", start);
