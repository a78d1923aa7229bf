#![allow(dead_code)] fn x(){}
