/** The robot model: URDF parsing, kinematics and rigid-body dynamics. */
export { Dynamics } from "./dynamics.js";
export { Kinematics } from "./kinematics.js";
export type {
  Inertial,
  JointSpec,
  LinkSpec,
  Mat3,
  MovingJointType,
  RobotModel,
  SoftLimits,
  Transform,
  Vec3,
} from "./types.js";
export { loadUrdf, parseUrdf, rpyToMatrix, UrdfError } from "./urdf.js";
