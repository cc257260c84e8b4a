mod guide;
mod requests;
