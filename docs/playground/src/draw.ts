/**
 * Drawing an env's frame on a canvas: CartPole and Pendulum (and MountainCarContinuous) from their
 * observations, the MuJoCo locomotion envs from their capsules seen from the side
 * (`Env.sideView`: x0, z0, x1, z1, radius per geom, metres), with the camera following the torso.
 */

type Ctx = CanvasRenderingContext2D;

function clear(c: Ctx, w: number, h: number): void {
  c.fillStyle = '#f8fafc';
  c.fillRect(0, 0, w, h);
}

/** CartPole: [x, ẋ, θ, θ̇]; the track is ±2.4 m, the pole 1 m long (half-length 0.5). */
function cartpole(c: Ctx, w: number, h: number, o: Float32Array): void {
  const scale = w / 5.6;
  const ground = h * 0.7;
  const cx = w / 2 + o[0]! * scale;
  c.strokeStyle = '#94a3b8';
  c.lineWidth = 2;
  c.beginPath();
  c.moveTo(w / 2 - 2.4 * scale, ground);
  c.lineTo(w / 2 + 2.4 * scale, ground);
  c.stroke();
  const cw = 0.5 * scale;
  const ch = 0.3 * scale;
  c.fillStyle = '#334155';
  c.fillRect(cx - cw / 2, ground - ch / 2, cw, ch);
  const len = 1.0 * scale;
  const th = o[2]!;
  c.strokeStyle = '#d97706';
  c.lineWidth = 0.1 * scale;
  c.lineCap = 'round';
  c.beginPath();
  c.moveTo(cx, ground - ch / 4);
  c.lineTo(cx + len * Math.sin(th), ground - ch / 4 - len * Math.cos(th));
  c.stroke();
}

/** Pendulum: [cos θ, sin θ, θ̇], θ = 0 upright. */
function pendulum(c: Ctx, w: number, h: number, o: Float32Array): void {
  const cx = w / 2;
  const cy = h / 2;
  const len = Math.min(w, h) * 0.38;
  c.strokeStyle = '#dc2626';
  c.lineWidth = len * 0.12;
  c.lineCap = 'round';
  c.beginPath();
  c.moveTo(cx, cy);
  c.lineTo(cx + len * o[1]!, cy - len * o[0]!);
  c.stroke();
  c.fillStyle = '#1f2937';
  c.beginPath();
  c.arc(cx, cy, len * 0.06, 0, 2 * Math.PI);
  c.fill();
}

/** MountainCarContinuous: [position, velocity]; the hill is y = 0.45·sin(3x) + 0.55 on [−1.2, 0.6]. */
function mountainCar(c: Ctx, w: number, h: number, o: Float32Array): void {
  const X = (x: number) => ((x + 1.2) / 1.8) * (w - 20) + 10;
  const Y = (y: number) => h - 10 - y * (h - 30);
  c.strokeStyle = '#64748b';
  c.lineWidth = 2;
  c.beginPath();
  for (let i = 0; i <= 100; i++) {
    const x = -1.2 + (1.8 * i) / 100;
    const y = 0.45 * Math.sin(3 * x) + 0.55;
    if (i === 0) c.moveTo(X(x), Y(y));
    else c.lineTo(X(x), Y(y));
  }
  c.stroke();
  const x = o[0]!;
  c.fillStyle = '#2563eb';
  c.beginPath();
  c.arc(X(x), Y(0.45 * Math.sin(3 * x) + 0.55) - 8, 8, 0, 2 * Math.PI);
  c.fill();
  c.fillStyle = '#16a34a';
  c.fillRect(X(0.45) - 2, Y(0.45 * Math.sin(1.35) + 0.55) - 24, 4, 24);
}

/** MuJoCo: capsules from the side; the camera follows the first geom (the torso). */
function side(c: Ctx, w: number, h: number, v: Float32Array): void {
  const scale = h / 2.2;
  const ground = h - 24;
  const camX = v.length >= 5 ? (v[0]! + v[2]!) / 2 : 0;
  const X = (x: number) => w / 2 + (x - camX) * scale;
  const Y = (z: number) => ground - z * scale;
  c.strokeStyle = '#94a3b8';
  c.lineWidth = 2;
  c.beginPath();
  c.moveTo(0, ground);
  c.lineTo(w, ground);
  c.stroke();
  // ground marks every metre, so motion shows while the camera follows
  c.fillStyle = '#64748b';
  c.font = '10px system-ui, sans-serif';
  c.textAlign = 'center';
  for (let m = Math.floor(camX - w / scale); m <= camX + w / scale; m++) {
    c.fillRect(X(m) - 1, ground, 2, 6);
    c.fillText(`${m} m`, X(m), ground + 17);
  }
  c.lineCap = 'round';
  for (let i = 0; i + 5 <= v.length; i += 5) {
    c.strokeStyle = i === 0 ? '#b45309' : '#475569';
    c.lineWidth = Math.max(2, 2 * v[i + 4]! * scale);
    c.beginPath();
    c.moveTo(X(v[i]!), Y(v[i + 1]!));
    c.lineTo(X(v[i + 2]!), Y(v[i + 3]!));
    c.stroke();
  }
}

/**
 * Draws one frame.
 * @param canvas Where.
 * @param envId The env's id (picks the drawing).
 * @param kind `side` for MuJoCo capsules, `observation` for a classic env.
 * @param frame The frame's numbers.
 */
export function drawFrame(canvas: HTMLCanvasElement, envId: string, kind: 'observation' | 'side', frame: Float32Array): void {
  const c = canvas.getContext('2d');
  if (!c) return;
  const { width: w, height: h } = canvas;
  clear(c, w, h);
  if (kind === 'side') side(c, w, h, frame);
  else if (envId.startsWith('CartPole')) cartpole(c, w, h, frame);
  else if (envId.startsWith('Pendulum')) pendulum(c, w, h, frame);
  else if (envId.startsWith('MountainCar')) mountainCar(c, w, h, frame);
}
