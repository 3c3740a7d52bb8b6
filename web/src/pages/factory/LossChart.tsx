// A hand-written SVG line chart of the training loss and the held-out (eval) loss per step.

export interface LossPoint {
  step: number;
  loss: number;
  evalLoss?: number;
}

const grouped = new Intl.NumberFormat('en-US');
const W = 640;
const H = 240;
const PAD = { left: 52, right: 18, top: 14, bottom: 34 };

/** About `count` round tick values covering [min, max]. */
function ticks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function label(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 10 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2);
}

export function LossChart({ points, of }: { points: LossPoint[]; of: number }) {
  const evals = points.filter((p) => p.evalLoss !== undefined && Number.isFinite(p.evalLoss));
  const values = [...points.map((p) => p.loss), ...evals.map((p) => p.evalLoss!)].filter(
    Number.isFinite,
  );
  const lastStep = points.length ? points[points.length - 1]!.step : 0;
  const xMax = Math.max(1, of, lastStep);
  let yMin = values.length ? Math.min(...values) : 0;
  let yMax = values.length ? Math.max(...values) : 1;
  if (yMax - yMin < 1e-6) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const margin = (yMax - yMin) * 0.08;
  yMin = Math.max(0, yMin - margin);
  yMax += margin;

  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (step: number) => PAD.left + (step / xMax) * plotW;
  const y = (v: number) => PAD.top + (1 - (v - yMin) / (yMax - yMin)) * plotH;
  const path = (ps: [number, number][]) =>
    ps.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ');

  const xTicks = ticks(0, xMax, 5).filter((t) => Number.isInteger(t));
  const yTicks = ticks(yMin, yMax, 4);
  const train = points.filter((p) => Number.isFinite(p.loss));
  const last = train[train.length - 1];

  return (
    <figure
      className="loss-chart"
      data-testid="loss-chart"
      data-points={train.length}
      data-eval-points={evals.length}
    >
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Loss per step: ${train.length} points${last ? `, latest ${last.loss.toFixed(3)} at step ${last.step}` : ''}`}
      >
        <g className="chart-grid">
          {values.length > 0 &&
            yTicks.map((t) => (
              <g key={`y${t}`}>
                <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} />
                <text x={PAD.left - 8} y={y(t)} textAnchor="end" dominantBaseline="middle">
                  {label(t)}
                </text>
              </g>
            ))}
          {xTicks.map((t) => (
            <text key={`x${t}`} x={x(t)} y={H - PAD.bottom + 16} textAnchor="middle">
              {grouped.format(t)}
            </text>
          ))}
        </g>
        <line
          className="chart-axis"
          x1={PAD.left}
          x2={W - PAD.right}
          y1={PAD.top + plotH}
          y2={PAD.top + plotH}
        />
        <text className="chart-axis-label" x={W - PAD.right} y={H - 4} textAnchor="end">
          step
        </text>
        {train.length > 1 && (
          <polyline
            className="chart-line chart-line-train"
            points={path(train.map((p) => [p.step, p.loss]))}
            data-testid="loss-line"
          />
        )}
        {last && (
          <circle className="chart-dot chart-dot-train" cx={x(last.step)} cy={y(last.loss)} r={3} />
        )}
        {evals.length > 1 && (
          <polyline
            className="chart-line chart-line-eval"
            points={path(evals.map((p) => [p.step, p.evalLoss!]))}
            data-testid="eval-loss-line"
          />
        )}
        {evals.map((p) => (
          <circle
            key={`e${p.step}`}
            className="chart-dot chart-dot-eval"
            cx={x(p.step)}
            cy={y(p.evalLoss!)}
            r={3.5}
          >
            <title>{`step ${p.step}: eval loss ${p.evalLoss!.toFixed(3)}`}</title>
          </circle>
        ))}
        {train.length === 0 && (
          <text className="chart-empty" x={PAD.left + plotW / 2} y={PAD.top + plotH / 2}>
            No steps yet
          </text>
        )}
      </svg>
      <figcaption className="chart-legend">
        <span>
          <span className="legend-swatch legend-train" aria-hidden="true" /> Training loss
        </span>
        <span>
          <span className="legend-swatch legend-eval" aria-hidden="true" /> Held-out loss
        </span>
      </figcaption>
    </figure>
  );
}
