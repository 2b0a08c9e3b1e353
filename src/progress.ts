/**
 * A progress bar on stderr when it is a terminal; otherwise a line now and
 * then, so CI logs show life without thousands of carriage returns.
 */
export class ProgressBar {
  private readonly interactive = process.stderr.isTTY === true;
  private lastPercent = -1;
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
  ) {}

  update(done: number, total: number, detail = "") {
    if (!this.enabled || total <= 0) return;
    const percent = Math.floor((100 * done) / total);
    if (this.interactive) {
      const width = 30;
      const filled = Math.round((width * done) / total);
      const rate = done / 1e6 / Math.max((Date.now() - this.started) / 1000, 1e-3);
      const line = `${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent}% ${formatBytes(done)}/${formatBytes(total)} ${rate.toFixed(0)} MB/s ${detail}`;
      process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1).padEnd(Math.min(process.stderr.columns ?? 120, 120) - 1)}`);
    } else if (percent >= this.lastPercent + 25 || (percent === 100 && this.lastPercent !== 100)) {
      process.stderr.write(`${this.label}: ${percent}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
    } else {
      return;
    }
    this.lastPercent = percent;
  }

  finish() {
    if (this.enabled && this.interactive && this.lastPercent >= 0) process.stderr.write("\n");
  }
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
