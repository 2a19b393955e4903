//! Client for the JSON protocol (written next).
