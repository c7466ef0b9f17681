// A one-line progress bar for an epoch: redrawn in place with \r when the stream is a terminal,
// plain lines every `every` seconds otherwise (logs, CI, pipes). Shows the running loss, examples
// per second and the time left.
const fmtTime = (s) => {
  if (!Number.isFinite(s)) return "--:--";
  s = Math.max(0, Math.round(s));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};

export class Progress {
  constructor({ total, label = "", stream = process.stdout, width = 24, every = 5 }) {
    this.total = total;
    this.label = label;
    this.stream = stream;
    this.width = width;
    this.every = every;
    this.tty = Boolean(stream.isTTY);
    this.start = performance.now();
    this.lastPrint = this.start;
    this.lastDraw = 0;
  }

  /** `done` examples seen so far; `loss` the running mean loss. */
  update(done, loss) {
    const now = performance.now();
    const elapsed = (now - this.start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const stats = `loss ${loss.toFixed(4)}  ${Math.round(rate).toLocaleString("en-US")} ex/s  ETA ${fmtTime(eta)}`;
    if (this.tty) {
      if (now - this.lastDraw < 50 && done < this.total) return; // redraw at most 20 times a second
      this.lastDraw = now;
      const filled = Math.round((this.width * done) / this.total);
      const bar = "█".repeat(filled) + "░".repeat(this.width - filled);
      const pct = `${String(Math.floor((100 * done) / this.total)).padStart(3)}%`;
      this.stream.write(`\r\x1b[2K${this.label} ${bar} ${pct} ${done}/${this.total}  ${stats}`);
    } else if (now - this.lastPrint >= this.every * 1000 && done < this.total) {
      this.lastPrint = now;
      this.stream.write(`${this.label} ${done}/${this.total}  ${stats}\n`);
    }
  }

  /** Clears the bar (terminal only), so the caller's summary line takes its place. */
  finish() {
    if (this.tty) this.stream.write("\r\x1b[2K");
    return (performance.now() - this.start) / 1000;
  }
}
