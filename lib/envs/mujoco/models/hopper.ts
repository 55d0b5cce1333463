/**
 * Hopper (Gymnasium `Hopper-v4`): a one-legged planar robot — torso, thigh, leg, foot — on a
 * slide-slide-hinge root (x, z, pitch). Capsules of density 1000 give the masses; every
 * body geom collides with the floor and with non-adjacent links (condim 1 on the links, 3 on the
 * floor, so contacts with the floor are frictional). RK4 at 2 ms, 4 substeps per env step.
 *
 * Written in body-local coordinates with each child body's frame at its joint; positions in the
 * comments below are world heights at the reference pose (qpos = qpos0).
 *
 * Geometry (world frame, metres): torso capsule z 1.45 → 1.05 (r 0.05); thigh 1.05 → 0.60
 * (r 0.05); leg 0.60 → 0.10 (r 0.04); foot horizontal x −0.13 → 0.26 at z 0.10 (r 0.06).
 * Hinges: hip at 1.05, knee at 0.60, ankle at 0.10, all about −y.
 *
 * `<size memory="1M"/>`: each MjData's arena (contacts, constraint rows) is 1 MiB instead of
 * MuJoCo's ~13 MiB default; a long random rollout uses ~35 kB of it, so nothing is ever dropped,
 * and a vector of many envs stays small in the 32-bit wasm address space.
 */
export const HOPPER_XML = `<mujoco model="hopper">
  <compiler angle="degree" inertiafromgeom="true"/>
  <option timestep="0.002" integrator="RK4"/>
  <size memory="1M"/>
  <default>
    <joint limited="true" armature="1" damping="1"/>
    <geom contype="1" conaffinity="1" condim="1" margin="0.001" solref="0.02 1" solimp="0.8 0.8 0.01"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="20 20 0.125" condim="3"/>
    <body name="torso" pos="0 0 1.25">
      <joint name="rootx" type="slide" axis="1 0 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" ref="1.25" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <geom name="torso_geom" type="capsule" size="0.05" fromto="0 0 0.2 0 0 -0.2" friction="0.9"/>
      <body name="thigh" pos="0 0 -0.2">
        <joint name="thigh_joint" type="hinge" axis="0 -1 0" range="-150 0"/>
        <geom name="thigh_geom" type="capsule" size="0.05" fromto="0 0 0 0 0 -0.45" friction="0.9"/>
        <body name="leg" pos="0 0 -0.45">
          <joint name="leg_joint" type="hinge" axis="0 -1 0" range="-150 0"/>
          <geom name="leg_geom" type="capsule" size="0.04" fromto="0 0 0 0 0 -0.5" friction="0.9"/>
          <body name="foot" pos="0 0 -0.5">
            <joint name="foot_joint" type="hinge" axis="0 -1 0" range="-45 45"/>
            <geom name="foot_geom" type="capsule" size="0.06" fromto="-0.13 0 0 0.26 0 0" friction="2.0"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="thigh" joint="thigh_joint" gear="200"/>
    <motor name="leg" joint="leg_joint" gear="200"/>
    <motor name="foot" joint="foot_joint" gear="200"/>
  </actuator>
</mujoco>
`;
