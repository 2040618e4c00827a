'use strict';

/**
 * Progress on stderr: on a TTY a bar redrawn in place (processed/total, rate,
 * ETA); otherwise a plain line every `interval` seconds, for CI logs and pipes.
 */

function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0');
  return `${h ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

const num = (n) => n.toLocaleString('en-US');

class Progress {
  /**
   * @param {object} o
   * @param {string} o.label   e.g. "encrypt learners"
   * @param {number} o.total   documents to scan (an estimate is fine)
   * @param {NodeJS.WriteStream} [o.stream]
   * @param {boolean} [o.quiet]
   * @param {number} [o.interval]  seconds between lines when not a TTY
   */
  constructor({ label, total, stream = process.stderr, quiet = false, interval = 10 }) {
    this.label = label;
    this.total = total;
    this.stream = stream;
    this.quiet = quiet;
    this.tty = Boolean(stream.isTTY);
    this.done = 0;
    this.changed = 0;
    this.started = performance.now();
    this.lastLine = 0;
    this.timer = null;
    if (!quiet) {
      this.timer = setInterval(() => this.render(), this.tty ? 200 : interval * 1000);
      this.timer.unref();
    }
  }

  update(done, changed) {
    this.done = done;
    this.changed = changed;
  }

  rate() {
    const secs = (performance.now() - this.started) / 1000;
    return secs > 0 ? this.done / secs : 0;
  }

  line() {
    const rate = this.rate();
    const pct = this.total ? Math.min(100, (100 * this.done) / this.total) : 100;
    const eta = rate > 0 && this.total ? (this.total - this.done) / rate : NaN;
    return { rate, pct, eta };
  }

  render() {
    if (this.quiet) return;
    const { rate, pct, eta } = this.line();
    if (this.tty) {
      const width = 24;
      const filled = Math.round((pct / 100) * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const text = `${this.label} ${bar} ${num(this.done)}/${num(this.total)} ${pct.toFixed(0)}% ${num(Math.round(rate))} docs/s ETA ${formatDuration(eta)} (${num(this.changed)} changed)`;
      this.stream.write(`\r\x1b[K${text.slice(0, (this.stream.columns || 120) - 1)}`);
    } else {
      this.stream.write(
        `fieldcrypt: ${this.label}: ${num(this.done)}/${num(this.total)} documents (${pct.toFixed(1)}%), ${num(Math.round(rate))} docs/s, ETA ${formatDuration(eta)}, ${num(this.changed)} changed\n`,
      );
    }
  }

  /** Stops redrawing; on a TTY leaves the final bar on its own line. */
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.quiet && this.tty) {
      this.render();
      this.stream.write('\n');
    }
  }
}

module.exports = { Progress, formatDuration };
