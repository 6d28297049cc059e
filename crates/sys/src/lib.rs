//! The unsafe corner of stasis: raw Linux interfaces behind safe types.
