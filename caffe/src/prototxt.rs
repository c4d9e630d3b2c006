//! The protobuf text format of a `.prototxt`, parsed into a generic tree of fields (names in
//! file order, scalar values as their text) and then read into the [`NetParameter`] fields
//! the importer uses. Hand-written because prost has no text format and the few constructs
//! a deploy file uses are simple: `name: value`, `name { ... }` (or `name: { ... }`), quoted
//! strings, numbers, enum identifiers, `#` comments, optional `,` or `;` separators and
//! `[a, b]` lists.

use crate::proto::{
    v1_type_value, BlobShape, ConvolutionParameter, InnerProductParameter, InputParameter,
    LayerParameter, LrnParameter, NetParameter, PoolingParameter, SoftmaxParameter,
    V1LayerParameter,
};

/// One field value: a scalar's text (quotes removed) or a nested message.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(String),
    Message(Message),
}

/// A message: its fields in file order (a repeated field appears several times).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    pub fields: Vec<(String, Value)>,
}

/// A parse or read error: the 1-based line and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct TextError {
    pub line: usize,
    pub problem: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    /// A number or a quoted string's content.
    Literal(String),
    Punct(char),
}

/// Nesting deeper than this is refused (a hostile file could otherwise exhaust the stack).
const MAX_DEPTH: usize = 64;

/// Parses text-format protobuf into a tree.
pub fn parse(text: &str) -> Result<Message, TextError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, pos: 0 };
    let message = parser.message(0)?;
    if let Some((line, token)) = parser.tokens.get(parser.pos) {
        return Err(TextError {
            line: *line,
            problem: format!("unexpected {token:?} after the last field"),
        });
    }
    Ok(message)
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, TextError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some(other) => s.push(other),
                            None => break,
                        },
                        Some('\n') | None => {
                            return Err(TextError {
                                line,
                                problem: "unterminated string".into(),
                            })
                        }
                        Some(other) => s.push(other),
                    }
                }
                tokens.push((line, Token::Literal(s)));
            }
            '{' | '}' | ':' | ',' | ';' | '[' | ']' | '<' | '>' => {
                tokens.push((line, Token::Punct(c)));
                chars.next();
            }
            c if c.is_ascii_alphanumeric() || "_-+.".contains(c) => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || "_-+.".contains(c) {
                        s.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let is_ident = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && !matches!(s.to_ascii_lowercase().as_str(), "inf" | "nan");
                tokens.push((
                    line,
                    if is_ident {
                        Token::Ident(s)
                    } else {
                        Token::Literal(s)
                    },
                ));
            }
            other => {
                return Err(TextError {
                    line,
                    problem: format!("unexpected character {other:?}"),
                })
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |(l, _)| *l)
    }

    fn error(&self, problem: impl Into<String>) -> TextError {
        TextError {
            line: self.line(),
            problem: problem.into(),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Fields until a closing brace (not consumed) or the end.
    fn message(&mut self, depth: usize) -> Result<Message, TextError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("messages nested deeper than {MAX_DEPTH}")));
        }
        let mut message = Message::default();
        loop {
            match self.peek() {
                None | Some(Token::Punct('}')) | Some(Token::Punct('>')) => return Ok(message),
                Some(Token::Ident(name)) => {
                    let name = name.clone();
                    self.pos += 1;
                    self.field(name, &mut message, depth)?;
                    let _ = self.eat(',') || self.eat(';');
                }
                Some(other) => {
                    return Err(self.error(format!("expected a field name, found {other:?}")))
                }
            }
        }
    }

    fn field(&mut self, name: String, into: &mut Message, depth: usize) -> Result<(), TextError> {
        let colon = self.eat(':');
        if let Some(close) = self.open() {
            let inner = self.message(depth + 1)?;
            if !self.eat(close) {
                return Err(self.error(format!("'{name}': missing '{close}'")));
            }
            into.fields.push((name, Value::Message(inner)));
            return Ok(());
        }
        if !colon {
            return Err(self.error(format!("'{name}': expected ':' or '{{'")));
        }
        if self.eat('[') {
            while !self.eat(']') {
                let value = self.scalar(&name)?;
                into.fields.push((name.clone(), Value::Scalar(value)));
                let _ = self.eat(',');
            }
            return Ok(());
        }
        let value = self.scalar(&name)?;
        into.fields.push((name, Value::Scalar(value)));
        Ok(())
    }

    /// An opening `{` or `<`: returns its closing character.
    fn open(&mut self) -> Option<char> {
        if self.eat('{') {
            Some('}')
        } else if self.eat('<') {
            Some('>')
        } else {
            None
        }
    }

    fn scalar(&mut self, name: &str) -> Result<String, TextError> {
        match self.peek().cloned() {
            Some(Token::Ident(s)) | Some(Token::Literal(s)) => {
                self.pos += 1;
                // Adjacent string literals concatenate.
                let mut s = s;
                while let Some(Token::Literal(more)) = self.peek().cloned() {
                    if more.parse::<f64>().is_ok() {
                        break;
                    }
                    s.push_str(&more);
                    self.pos += 1;
                }
                Ok(s)
            }
            other => Err(self.error(format!("'{name}': expected a value, found {other:?}"))),
        }
    }
}

impl Message {
    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn scalars<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.all(name)
            .filter_map(|v| match v {
                Value::Scalar(s) => Some(s.as_str()),
                Value::Message(_) => None,
            })
            .collect()
    }

    fn messages<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Message> + use<'a, 'n> {
        self.all(name).filter_map(|v| match v {
            Value::Message(m) => Some(m),
            Value::Scalar(_) => None,
        })
    }

    fn message<'a>(&'a self, name: &str) -> Option<&'a Message> {
        self.messages(name).last()
    }

    fn string(&self, name: &str) -> Option<String> {
        self.scalars(name).last().map(|s| s.to_string())
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.scalars(name).last() {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("'{name}: {s}' is not a valid number here")),
        }
    }

    fn numbers<T: std::str::FromStr>(&self, name: &str) -> Result<Vec<T>, String> {
        self.scalars(name)
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("'{name}: {s}' is not a valid number here"))
            })
            .collect()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.scalars(name).last() {
            None => Ok(None),
            Some(&"true") | Some(&"1") => Ok(Some(true)),
            Some(&"false") | Some(&"0") => Ok(Some(false)),
            Some(s) => Err(format!("'{name}: {s}' is not true or false")),
        }
    }
}

/// Reads the fields the importer uses from a parsed `.prototxt` (a NetParameter).
pub fn net_parameter(tree: &Message) -> Result<NetParameter, String> {
    let mut layer = Vec::new();
    for (i, m) in tree.messages("layer").enumerate() {
        layer.push(
            layer_parameter(m).map_err(|e| format!("layer #{} ({}): {e}", i + 1, layer_name(m)))?,
        );
    }
    let mut layers = Vec::new();
    for (i, m) in tree.messages("layers").enumerate() {
        layers
            .push(v1_layer(m).map_err(|e| format!("layers #{} ({}): {e}", i + 1, layer_name(m)))?);
    }
    Ok(NetParameter {
        name: tree.string("name"),
        input: tree
            .scalars("input")
            .iter()
            .map(|s| s.to_string())
            .collect(),
        input_shape: tree
            .messages("input_shape")
            .map(blob_shape)
            .collect::<Result<_, _>>()?,
        input_dim: tree.numbers("input_dim")?,
        layer,
        layers,
    })
}

fn layer_name(m: &Message) -> String {
    m.string("name").unwrap_or_else(|| "unnamed".into())
}

fn blob_shape(m: &Message) -> Result<BlobShape, String> {
    Ok(BlobShape {
        dim: m.numbers("dim")?,
    })
}

fn layer_parameter(m: &Message) -> Result<LayerParameter, String> {
    Ok(LayerParameter {
        name: m.string("name"),
        r#type: m.string("type"),
        bottom: m.scalars("bottom").iter().map(|s| s.to_string()).collect(),
        top: m.scalars("top").iter().map(|s| s.to_string()).collect(),
        blobs: Vec::new(),
        convolution_param: m
            .message("convolution_param")
            .map(convolution)
            .transpose()?,
        inner_product_param: m
            .message("inner_product_param")
            .map(inner_product)
            .transpose()?,
        lrn_param: m.message("lrn_param").map(lrn).transpose()?,
        pooling_param: m.message("pooling_param").map(pooling).transpose()?,
        softmax_param: m.message("softmax_param").map(softmax).transpose()?,
        input_param: m
            .message("input_param")
            .map(|p| {
                Ok::<_, String>(InputParameter {
                    shape: p
                        .messages("shape")
                        .map(blob_shape)
                        .collect::<Result<_, _>>()?,
                })
            })
            .transpose()?,
    })
}

fn v1_layer(m: &Message) -> Result<V1LayerParameter, String> {
    let r#type = match m.string("type") {
        None => None,
        Some(t) => Some(v1_enum(&t)?),
    };
    Ok(V1LayerParameter {
        bottom: m.scalars("bottom").iter().map(|s| s.to_string()).collect(),
        top: m.scalars("top").iter().map(|s| s.to_string()).collect(),
        name: m.string("name"),
        r#type,
        blobs: Vec::new(),
        convolution_param: m
            .message("convolution_param")
            .map(convolution)
            .transpose()?,
        inner_product_param: m
            .message("inner_product_param")
            .map(inner_product)
            .transpose()?,
        lrn_param: m.message("lrn_param").map(lrn).transpose()?,
        pooling_param: m.message("pooling_param").map(pooling).transpose()?,
        softmax_param: m.message("softmax_param").map(softmax).transpose()?,
    })
}

/// A V1 `type: CONVOLUTION` enum name (or its number).
fn v1_enum(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse() {
        return Ok(n);
    }
    let current = match text {
        "CONVOLUTION" => "Convolution",
        "DATA" => "Data",
        "DROPOUT" => "Dropout",
        "FLATTEN" => "Flatten",
        "IMAGE_DATA" => "ImageData",
        "INNER_PRODUCT" => "InnerProduct",
        "LRN" => "LRN",
        "POOLING" => "Pooling",
        "RELU" => "ReLU",
        "SOFTMAX" => "Softmax",
        "SOFTMAX_LOSS" => "SoftmaxWithLoss",
        "ACCURACY" => "Accuracy",
        "SPLIT" => "Split",
        "MEMORY_DATA" => "MemoryData",
        other => {
            return Err(format!(
                "V1 layer type {other} is not one a classifier of this kind uses"
            ))
        }
    };
    Ok(v1_type_value(current).expect("every name above has a value"))
}

fn convolution(m: &Message) -> Result<ConvolutionParameter, String> {
    Ok(ConvolutionParameter {
        num_output: m.number("num_output")?,
        bias_term: m.bool("bias_term")?,
        pad: m.numbers("pad")?,
        kernel_size: m.numbers("kernel_size")?,
        stride: m.numbers("stride")?,
        dilation: m.numbers("dilation")?,
        pad_h: m.number("pad_h")?,
        pad_w: m.number("pad_w")?,
        kernel_h: m.number("kernel_h")?,
        kernel_w: m.number("kernel_w")?,
        stride_h: m.number("stride_h")?,
        stride_w: m.number("stride_w")?,
        group: m.number("group")?,
    })
}

fn pooling(m: &Message) -> Result<PoolingParameter, String> {
    let pool = match m.string("pool").as_deref() {
        None => None,
        Some("MAX") | Some("0") => Some(0),
        Some("AVE") | Some("1") => Some(1),
        Some("STOCHASTIC") | Some("2") => Some(2),
        Some(other) => return Err(format!("pool: {other} is not MAX, AVE or STOCHASTIC")),
    };
    Ok(PoolingParameter {
        pool,
        pad: m.numbers("pad")?,
        pad_h: m.number("pad_h")?,
        pad_w: m.number("pad_w")?,
        kernel_size: m.numbers("kernel_size")?,
        kernel_h: m.number("kernel_h")?,
        kernel_w: m.number("kernel_w")?,
        stride: m.numbers("stride")?,
        stride_h: m.number("stride_h")?,
        stride_w: m.number("stride_w")?,
        global_pooling: m.bool("global_pooling")?,
    })
}

fn lrn(m: &Message) -> Result<LrnParameter, String> {
    let norm_region = match m.string("norm_region").as_deref() {
        None => None,
        Some("ACROSS_CHANNELS") | Some("0") => Some(0),
        Some("WITHIN_CHANNEL") | Some("1") => Some(1),
        Some(other) => return Err(format!("norm_region: {other}")),
    };
    Ok(LrnParameter {
        local_size: m.number("local_size")?,
        alpha: m.number("alpha")?,
        beta: m.number("beta")?,
        norm_region,
        k: m.number("k")?,
    })
}

fn inner_product(m: &Message) -> Result<InnerProductParameter, String> {
    Ok(InnerProductParameter {
        num_output: m.number("num_output")?,
        bias_term: m.bool("bias_term")?,
        axis: m.number("axis")?,
        transpose: m.bool("transpose")?,
    })
}

fn softmax(m: &Message) -> Result<SoftmaxParameter, String> {
    Ok(SoftmaxParameter {
        axis: m.number("axis")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_layer_forms_comments_and_lists() {
        let text = r#"
            name: "net"  # a comment
            input: "data"
            input_dim: 1 input_dim: 3
            input_dim: 227, input_dim: 227
            layer { name: 'conv1' type: "Convolution" bottom: "data" top: "conv1"
              convolution_param { num_output: 96 kernel_size: [11] stride: 4 } }
            layers < name: "relu1" type: RELU bottom: "conv1" top: "conv1" >
            layers { name: "pool1" type: POOLING pooling_param: { pool: MAX kernel_size: 3 stride: 2 } }
        "#;
        let net = net_parameter(&parse(text).unwrap()).unwrap();
        assert_eq!(net.name.as_deref(), Some("net"));
        assert_eq!(net.input_dim, [1, 3, 227, 227]);
        let conv = net.layer[0].convolution_param.as_ref().unwrap();
        assert_eq!(
            (
                conv.num_output,
                conv.kernel_size.clone(),
                conv.stride.clone()
            ),
            (Some(96), vec![11], vec![4])
        );
        assert_eq!(net.layers[0].r#type, Some(18));
        assert_eq!(net.layers[1].pooling_param.as_ref().unwrap().pool, Some(0));
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("name: \"x\"\nlayer {\n  name: \n}").unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        let err = parse("layer { name: \"a\" ").unwrap_err();
        assert!(err.problem.contains("missing '}'"), "{err}");
        assert!(parse("a: \"unterminated").is_err());
        let deep = "a {".repeat(100) + &"}".repeat(100);
        assert!(parse(&deep).unwrap_err().problem.contains("nested"));
        let tree = parse("layer { convolution_param { num_output: -3 } }").unwrap();
        assert!(net_parameter(&tree).unwrap_err().contains("num_output: -3"));
    }
}
