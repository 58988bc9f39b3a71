//! Topic names and message types shared by the robot, the controller and the detector.
