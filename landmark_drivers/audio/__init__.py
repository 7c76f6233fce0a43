"""The embedded audio driver: acoustic features, phone recognition/alignment, visemes, nonverbal motion.

Import from the modules (`landmark_drivers.audio.audio_driver`, ...) or the names `landmark_drivers` exports.
"""
