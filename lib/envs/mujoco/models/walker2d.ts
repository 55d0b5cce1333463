/**
 * Walker2d (Gymnasium `Walker2d-v4`, model of v2–v4): a planar biped — torso and two legs of
 * thigh, leg, foot — on a slide-slide-hinge root (x, z, pitch). Capsules of density 1000; links
 * collide only with the floor (links have conaffinity 0). RK4 at 2 ms, 4 substeps per env step.
 *
 * Written in body-local coordinates with each child body's frame at its joint; world positions
 * at the reference pose: torso capsule z 1.45 → 1.05 (r 0.05); each thigh 1.05 → 0.60 (r 0.05);
 * each leg 0.60 → 0.10 (r 0.04); each foot horizontal x 0 → 0.2 at z 0.10 (r 0.06).
 * Friction 0.9 on every link except the left foot (1.9) — the v4 asymmetry, fixed in v5.
 *
 * `<size memory="1M"/>`: each MjData's arena (contacts, constraint rows) is 1 MiB instead of
 * MuJoCo's ~13 MiB default; a long random rollout uses ~35 kB of it, so nothing is ever dropped,
 * and a vector of many envs stays small in the 32-bit wasm address space.
 */
export const WALKER2D_XML = `<mujoco model="walker2d">
  <compiler angle="degree" inertiafromgeom="true"/>
  <option timestep="0.002" integrator="RK4"/>
  <size memory="1M"/>
  <default>
    <joint limited="true" armature="0.01" damping="0.1"/>
    <geom contype="1" conaffinity="0" condim="3" density="1000" friction="0.7 0.1 0.1"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="40 40 40" conaffinity="1"/>
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
            <geom name="foot_geom" type="capsule" size="0.06" fromto="0 0 0 0.2 0 0" friction="0.9"/>
          </body>
        </body>
      </body>
      <body name="thigh_left" pos="0 0 -0.2">
        <joint name="thigh_left_joint" type="hinge" axis="0 -1 0" range="-150 0"/>
        <geom name="thigh_left_geom" type="capsule" size="0.05" fromto="0 0 0 0 0 -0.45" friction="0.9"/>
        <body name="leg_left" pos="0 0 -0.45">
          <joint name="leg_left_joint" type="hinge" axis="0 -1 0" range="-150 0"/>
          <geom name="leg_left_geom" type="capsule" size="0.04" fromto="0 0 0 0 0 -0.5" friction="0.9"/>
          <body name="foot_left" pos="0 0 -0.5">
            <joint name="foot_left_joint" type="hinge" axis="0 -1 0" range="-45 45"/>
            <geom name="foot_left_geom" type="capsule" size="0.06" fromto="0 0 0 0.2 0 0" friction="1.9"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="thigh" joint="thigh_joint" gear="100"/>
    <motor name="leg" joint="leg_joint" gear="100"/>
    <motor name="foot" joint="foot_joint" gear="100"/>
    <motor name="thigh_left" joint="thigh_left_joint" gear="100"/>
    <motor name="leg_left" joint="leg_left_joint" gear="100"/>
    <motor name="foot_left" joint="foot_left_joint" gear="100"/>
  </actuator>
</mujoco>
`;
