// A standalone SVG of the training curves: mean training loss per epoch (left panel) and
// accuracy per epoch, training and held-out (right panel), with axes, ticks and labels.
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function panel({ x0, y0, w, h, title, yLabel, series, epochs, yMin, yMax, fmt }) {
  const sx = (e) => x0 + (epochs === 1 ? w / 2 : ((e - 1) / (epochs - 1)) * w);
  const sy = (v) => y0 + h - ((v - yMin) / (yMax - yMin)) * h;
  const out = [];
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const t of niceTicks(yMin, yMax)) {
    if (t < yMin - 1e-12 || t > yMax + 1e-12) continue;
    out.push(`<line x1="${x0}" y1="${sy(t)}" x2="${x0 + w}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x0 - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  const xticks = epochs <= 12 ? Array.from({ length: epochs }, (_, i) => i + 1) : niceTicks(1, epochs).filter((t) => Number.isInteger(t) && t >= 1);
  for (const e of xticks) {
    out.push(`<line x1="${sx(e)}" y1="${y0 + h}" x2="${sx(e)}" y2="${y0 + h + 5}" stroke="#333"/>`);
    out.push(`<text x="${sx(e)}" y="${y0 + h + 18}" text-anchor="middle" font-size="11">${e}</text>`);
  }
  out.push(`<path d="M${x0},${y0}V${y0 + h}H${x0 + w}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 36}" text-anchor="middle" font-size="12">epoch</text>`);
  out.push(`<text transform="translate(${x0 - 46},${y0 + h / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  series.forEach(({ name, values, color }, k) => {
    const pts = values.map((v, i) => [sx(i + 1), sy(v)]).filter(([, y]) => Number.isFinite(y));
    if (pts.length === 0) return;
    out.push(`<path d="${pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("")}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = y0 + 12 + 16 * k;
    out.push(`<line x1="${x0 + w - 120}" y1="${ly - 4}" x2="${x0 + w - 100}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${x0 + w - 94}" y="${ly}" font-size="11">${esc(name)}</text>`);
  });
  return out.join("\n");
}

/**
 * The SVG text for `history`, one entry per epoch: { loss, trainAcc, testAcc } (accuracies in
 * [0, 1]); `title` goes on top.
 */
export function curvesSvg(history, { title = "MNIST training" } = {}) {
  const W = 900, H = 380, w = 340, h = 240, top = 70;
  const epochs = history.length;
  const losses = history.map((r) => r.loss);
  const lossMax = Math.max(...losses) * 1.05;
  const accs = history.flatMap((r) => [r.trainAcc, r.testAcc]).filter(Number.isFinite);
  const accMin = Math.max(0, Math.floor(Math.min(...accs) * 20 - 0.5) / 20);
  const pct = (v) => `${(v * 100).toFixed(Number.isInteger(Math.round(v * 1000) / 10) ? 0 : 1)}%`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="26" text-anchor="middle" font-size="17">${esc(title)}</text>`,
    panel({ x0: 80, y0: top, w, h, title: "Training loss", yLabel: "cross-entropy (mean)", epochs, yMin: 0, yMax: lossMax,
      fmt: (v) => (+v.toFixed(4)).toString(), series: [{ name: "train loss", values: losses, color: "#d62728" }] }),
    panel({ x0: 80 + w + 120, y0: top, w, h, title: "Accuracy", yLabel: "accuracy", epochs, yMin: accMin, yMax: 1, fmt: pct,
      series: [
        { name: "train", values: history.map((r) => r.trainAcc), color: "#1f77b4" },
        { name: "held-out", values: history.map((r) => r.testAcc), color: "#2ca02c" },
      ] }),
    `</svg>`,
    "",
  ].join("\n");
}
