//! Every endpoint of the sandbox over HTTP (loco's test server, test config:
//! SQLite, in-memory cache, in-process queue), with insta snapshots.

mod home;
