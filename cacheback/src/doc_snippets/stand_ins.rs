// Stand-ins for the names the README and docs/ snippets take from an app (the
// sandbox's models and jobs, a Twitter client). A snippet includes this file
// with a hidden line and glob-imports it, so whatever the snippet defines
// itself shadows the stand-in of the same name.
#[allow(unused_imports)]
use stand_ins::*;

// The items every `impl Job` needs, for snippets that show only a policy.
#[allow(unused_macros)]
macro_rules! user_tweets_job {
    () => {
        type Args = (String,);
        type Output = Vec<Tweet>;
        async fn fetch(&self, (user,): &(String,)) -> Result<Vec<Tweet>, FetchError> {
            Ok(twitter::user_timeline(user).await?)
        }
    };
}

#[allow(dead_code, unused_imports)]
mod stand_ins {
    pub use cacheback::{Cacheback, FetchError, Job, cacheback};
    pub use loco_rs::app::AppContext;
    pub use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
    pub use std::sync::Arc;
    pub use std::time::Duration;

    #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Tweet(pub String);
    pub type Score = Tweet;

    #[derive(Debug)]
    pub struct TwitterError;
    impl std::fmt::Display for TwitterError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("twitter is down")
        }
    }
    impl std::error::Error for TwitterError {}
    pub type MyError = TwitterError;

    pub mod twitter {
        pub async fn user_timeline(user: &str) -> Result<Vec<super::Tweet>, super::TwitterError> {
            Ok(vec![super::Tweet(format!("tweet by {user}"))])
        }
    }
    pub async fn post_tweet(_user: &str, text: &str) -> Result<Tweet, TwitterError> {
        Ok(Tweet(text.into()))
    }

    #[derive(Default)]
    pub struct UserTweets;
    impl Job for UserTweets {
        user_tweets_job!();
    }

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    pub struct ByUser {
        pub user: String,
    }
    pub struct Tweets;
    impl Job for Tweets {
        type Args = ByUser;
        type Output = Vec<Tweet>;
        async fn fetch(&self, args: &ByUser) -> Result<Vec<Tweet>, FetchError> {
            Ok(twitter::user_timeline(&args.user).await?)
        }
    }

    #[cacheback]
    pub async fn fetch_tweets(ctx: &AppContext, username: String) -> Result<Vec<Tweet>, TwitterError> {
        twitter::user_timeline(&username).await
    }

    /// A job with no arguments.
    pub struct MyJob;
    impl Job for MyJob {
        type Args = ();
        type Output = Vec<Tweet>;
        async fn fetch(&self, (): &()) -> Result<Vec<Tweet>, FetchError> {
            Ok(vec![])
        }
    }

    pub struct Greeting {
        pub greeting: Arc<String>,
    }
    impl Job for Greeting {
        type Args = ();
        type Output = String;
        async fn fetch(&self, (): &()) -> Result<String, FetchError> {
            Ok(self.greeting.to_string())
        }
    }

    #[derive(Clone)]
    pub struct KeyedJob {
        pub db: DatabaseConnection,
    }
    impl Job for KeyedJob {
        type Args = (String,);
        type Output = Vec<Model>;
        async fn fetch(&self, (name,): &(String,)) -> Result<Vec<Model>, FetchError> {
            Ok(names_containing(&self.db, name).await?)
        }
    }

    pub mod dummy_models {
        use sea_orm::entity::prelude::*;
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
        #[sea_orm(table_name = "dummy_models")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub name: String,
        }
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    }
    pub use dummy_models::Model;
    pub mod users {
        pub use super::dummy_models::*;
    }

    pub async fn names_containing(db: &DatabaseConnection, q: &str) -> Result<Vec<Model>, DbErr> {
        dummy_models::Entity::find().filter(dummy_models::Column::Name.contains(q)).all(db).await
    }
}
