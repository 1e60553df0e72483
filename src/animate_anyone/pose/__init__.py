"""Pose tools: the keypoint format, extraction, OpenPose-style rendering and retargeting."""
