//! The handful of ONNX protobuf messages the Darknet importer writes, as
//! `prost` derive structs (no `protoc` at build time).
//!
//! Field numbers follow `onnx.proto` (proto2). Only the fields we set or read
//! are declared; protobuf readers skip the rest. Repeated scalars in
//! attributes are written unpacked, as proto2 does by default.

#![allow(missing_docs)] // field names mirror onnx.proto one to one

/// `TensorProto.DataType.FLOAT`.
pub const DT_FLOAT: i32 = 1;
/// `TensorProto.DataType.INT64`.
pub const DT_INT64: i32 = 7;

/// `AttributeProto.AttributeType` values we use.
pub mod attr_type {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    #[prost(int32, optional, tag = "20")]
    pub r#type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    #[prost(int32, optional, tag = "1")]
    pub elem_type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

impl Dimension {
    /// A fixed-size dimension.
    pub fn fixed(n: i64) -> Self {
        Dimension {
            dim_value: Some(n),
            dim_param: None,
        }
    }
    /// A named, free dimension.
    pub fn named(name: &str) -> Self {
        Dimension {
            dim_value: None,
            dim_param: Some(name.to_string()),
        }
    }
}

impl ValueInfoProto {
    /// A float tensor value with the given dimensions.
    pub fn float_tensor(name: &str, dims: Vec<Dimension>) -> Self {
        ValueInfoProto {
            name: Some(name.to_string()),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: Some(DT_FLOAT),
                    shape: Some(TensorShapeProto { dim: dims }),
                }),
            }),
        }
    }
}

impl TensorProto {
    /// A float initializer stored as little-endian raw data.
    pub fn floats(name: &str, dims: &[i64], data: &[f32]) -> Self {
        let mut raw = Vec::with_capacity(data.len() * 4);
        for v in data {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DT_FLOAT),
            name: Some(name.to_string()),
            raw_data: Some(raw),
        }
    }
    /// An int64 initializer stored as little-endian raw data.
    pub fn int64s(name: &str, dims: &[i64], data: &[i64]) -> Self {
        let mut raw = Vec::with_capacity(data.len() * 8);
        for v in data {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DT_INT64),
            name: Some(name.to_string()),
            raw_data: Some(raw),
        }
    }
}

impl AttributeProto {
    /// An integer attribute.
    pub fn int(name: &str, v: i64) -> Self {
        AttributeProto {
            name: Some(name.into()),
            i: Some(v),
            r#type: Some(attr_type::INT),
            ..Default::default()
        }
    }
    /// A float attribute.
    pub fn float(name: &str, v: f32) -> Self {
        AttributeProto {
            name: Some(name.into()),
            f: Some(v),
            r#type: Some(attr_type::FLOAT),
            ..Default::default()
        }
    }
    /// A list-of-integers attribute.
    pub fn ints(name: &str, v: &[i64]) -> Self {
        AttributeProto {
            name: Some(name.into()),
            ints: v.to_vec(),
            r#type: Some(attr_type::INTS),
            ..Default::default()
        }
    }
    /// A string attribute.
    pub fn string(name: &str, v: &str) -> Self {
        AttributeProto {
            name: Some(name.into()),
            s: Some(v.as_bytes().to_vec()),
            r#type: Some(attr_type::STRING),
            ..Default::default()
        }
    }
}

impl NodeProto {
    /// A node in the default domain.
    pub fn new(
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Self {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            attribute: attrs,
        }
    }
}
