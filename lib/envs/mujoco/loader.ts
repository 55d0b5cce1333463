/**
 * Loading MuJoCo's WebAssembly build (`mujoco-js`) once, and compiling each locomotion model
 * once.
 *
 * The module is instantiated on first use and cached (one wasm instance per process). Models are
 * compiled from the MJCF strings in `models/` by writing them to the module's in-memory file
 * system; the compiled `MjModel` of an id is cached and shared by every env of that id (each env
 * owns its `MjData`). Models are never freed: there are three of them, a few tens of kB each.
 *
 * ```ts
 * const mujoco = await loadMujoco();
 * const model = await compiledModel('Hopper-v4');
 * const data = new mujoco.MjData(model);
 * mujoco.mj_step(model, data);
 * data.delete();
 * ```
 */
import type { MainModule, MjModel } from 'mujoco-js';
import { HOPPER_XML } from './models/hopper.ts';
import { HALF_CHEETAH_XML } from './models/half-cheetah.ts';
import { WALKER2D_XML } from './models/walker2d.ts';

export type MujocoModule = MainModule;

export const MUJOCO_ENV_IDS = ['Hopper-v4', 'HalfCheetah-v4', 'Walker2d-v4'] as const;
export type MujocoEnvId = (typeof MUJOCO_ENV_IDS)[number];

const MODEL_XML: Record<MujocoEnvId, string> = {
  'Hopper-v4': HOPPER_XML,
  'HalfCheetah-v4': HALF_CHEETAH_XML,
  'Walker2d-v4': WALKER2D_XML,
};

/** Where the MJCF files are written inside the module's in-memory file system. */
const FS_DIR = '/rxrl-mujoco';

let modulePromise: Promise<MujocoModule> | undefined;
const models = new Map<MujocoEnvId, Promise<MjModel>>();
/** Any compiled model: its arrays are views of the wasm memory, which is how we measure it. */
let probe: MjModel | undefined;

/** The MuJoCo WebAssembly module, instantiated once per process. */
export function loadMujoco(): Promise<MujocoModule> {
  if (modulePromise === undefined) {
    modulePromise = (async () => {
      const factory = (await import('mujoco-js')).default;
      const mujoco = await factory();
      mujoco.FS.mkdir(FS_DIR);
      return mujoco;
    })();
    // A failed load is not cached, so a later call can retry.
    modulePromise.catch(() => {
      modulePromise = undefined;
    });
  }
  return modulePromise;
}

/** The compiled model of `id`, compiled on first use and shared afterwards. */
export function compiledModel(id: MujocoEnvId): Promise<MjModel> {
  let p = models.get(id);
  if (p === undefined) {
    p = (async () => {
      const mujoco = await loadMujoco();
      const path = `${FS_DIR}/${id}.xml`;
      mujoco.FS.writeFile(path, MODEL_XML[id]);
      let model: MjModel | null | undefined;
      try {
        model = mujoco.MjModel.loadFromXML(path);
      } finally {
        mujoco.FS.unlink(path);
      }
      if (!model) throw new Error(`${id}: MuJoCo could not compile the model (see the MuJoCo message above)`);
      probe ??= model;
      return model;
    })();
    models.set(id, p);
    p.catch(() => models.delete(id));
  }
  return p;
}

/**
 * The current size in bytes of the MuJoCo module's WebAssembly memory (it only ever grows), or 0
 * before any model was compiled.
 */
export function mujocoHeapBytes(): number {
  if (probe === undefined) return 0;
  return (probe.body_mass as Float64Array).buffer.byteLength;
}
