/**
 * The robot as the rest of the node sees it: a kinematic tree parsed from URDF, and the
 * per-joint limits and dynamics that the simulator and the safety filter need.
 *
 * Units are SI throughout: m, rad, kg, kg·m², N·m, rad/s.
 */

/** A joint that moves (fixed joints are folded into their child link's placement). */
export type MovingJointType = "revolute" | "continuous" | "prismatic";

/** ros2_control `joint_limits` / URDF `<safety_controller>` parameters. */
export interface SoftLimits {
  softLower: number;
  softUpper: number;
  /** Gain from position error past a soft limit to the velocity bound (1/s). */
  kPosition: number;
  /** Gain from velocity error past the velocity bound to the effort bound (N·m·s/rad). */
  kVelocity: number;
}

/** One actuated degree of freedom, in the model's joint order. */
export interface JointSpec {
  name: string;
  type: MovingJointType;
  /** Hard position limits; -Infinity / +Infinity for a continuous joint. */
  lower: number;
  upper: number;
  /** URDF `<limit effort>`: the largest |effort| the actuator may be commanded. */
  effort: number;
  /** URDF `<limit velocity>`: the largest |velocity| allowed. */
  velocity: number;
  /** URDF `<dynamics damping>` (N·m·s/rad) and `<dynamics friction>` (Coulomb, N·m). */
  damping: number;
  friction: number;
  /**
   * Reflected rotor inertia (kg·m² or kg), rotor inertia × gear ratio², added to the joint's own
   * diagonal of the mass matrix (MuJoCo's `armature`). From the joint's `<transmission>`
   * (`drake:rotor_inertia`, `drake:gear_ratio`); 0 without one. For a geared servo it dwarfs the
   * link inertias near the wrist, and it is what keeps a 50 Hz torque loop stable on a small arm.
   */
  armature: number;
  /** URDF `<safety_controller>`, when the joint has one. */
  safety?: SoftLimits;
}

/** 3-vector and row-major 3×3 matrix, as plain tuples for the parsed (cold) model. */
export type Vec3 = [number, number, number];
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/** Rigid transform: rotation R (row-major 3×3) and translation p, mapping child coords to parent. */
export interface Transform {
  R: Mat3;
  p: Vec3;
}

/** A link's mass properties, expressed in the link frame (inertial origin already applied). */
export interface Inertial {
  mass: number;
  /** Centre of mass in the link frame. */
  com: Vec3;
  /** Rotational inertia about the centre of mass, in link-frame axes (row-major, symmetric). */
  inertia: Mat3;
}

/** A link of the tree. Index 0 is the root link. */
export interface LinkSpec {
  name: string;
  /** Parent link index; -1 for the root. */
  parent: number;
  /** The joint connecting this link to its parent (undefined for the root). */
  jointName?: string;
  /** Index into RobotModel.joints, or -1 when the joint to the parent is fixed (or this is the root). */
  jointIndex: number;
  /** Placement of the joint frame in the parent link frame (URDF joint `<origin>`). */
  origin: Transform;
  /** Joint axis in the joint frame (unit vector); zero for fixed. */
  axis: Vec3;
  inertial: Inertial;
}

export interface RobotModel {
  name: string;
  /** Links in topological order: every parent comes before its children. */
  links: LinkSpec[];
  /** Moving joints; joints[i] moves links[jointLink[i]]. Order = topological order of their links. */
  joints: JointSpec[];
  jointLink: number[];
  /** Number of moving joints (degrees of freedom). */
  dof: number;
  /** The link used as the end effector (by default the deepest leaf of the longest chain). */
  endEffector: string;
  /** Gravity in the root frame (m/s²), default [0, 0, -9.81]. */
  gravity: Vec3;
  /** What the description leaves to a guess (e.g. a moving link without <inertial>), one line each. */
  warnings?: string[];
}
