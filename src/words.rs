//! Word values (a mesh, a level, an action): each defined once by `words!`, which gives
//! its parser, its name, and the accepted forms for errors and `--help`. Every word is
//! read in any case, as booleans are.

/// Defines an enum whose variants are words: `words! { pub enum Keep { Never = "never",
/// ... } }` gives `Keep::parse`, `Keep::name`, `Keep::WORDS` and `Keep::form()`.
macro_rules! words {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Each variant with its word, in the order help and errors list them.
            pub const WORDS: &'static [($name, &'static str)] = &[$(($name::$variant, $word)),+];

            /// The variant `text` names, in any case.
            pub fn parse(text: &str) -> Option<$name> {
                Self::WORDS
                    .iter()
                    .find(|(_, word)| word.eq_ignore_ascii_case(text))
                    .map(|(variant, _)| *variant)
            }

            // Not every word's name is printed.
            #[allow(dead_code)]
            pub fn name(self) -> &'static str {
                Self::WORDS
                    .iter()
                    .find(|(variant, _)| *variant == self)
                    .map_or("", |(_, word)| word)
            }

            /// The accepted words: `never, on-failure or always`.
            #[allow(dead_code)]
            pub fn form() -> String {
                $crate::words::or_list(Self::WORDS.iter().map(|(_, word)| *word))
            }
        }
    };
}

/// `a, b or c`.
pub fn or_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    words! {
        /// A test word.
        pub enum Colour {
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn parse_name_and_form_come_from_one_definition() {
        assert_eq!(Colour::parse("DARK-blue"), Some(Colour::DarkBlue));
        assert_eq!(Colour::parse("green"), None);
        for (variant, word) in Colour::WORDS {
            assert_eq!(Colour::parse(word), Some(*variant));
            assert_eq!(variant.name(), *word);
        }
        assert_eq!(Colour::form(), "red or dark-blue");
        assert_eq!(super::or_list(["a", "b", "c"].into_iter()), "a, b or c");
    }
}
