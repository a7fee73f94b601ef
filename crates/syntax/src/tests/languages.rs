//! One fixture per language: definitions, references, outline nesting, the scope around the
//! cursor and the node after a marker.

use expect_test::expect;

use super::fixture::{check, check_scope};
use crate::Language;

#[test]
fn rust() {
    check(
        Language::Rust,
        r#"
mod shapes {
    pub struct Point { x: i32 }

    impl std::fmt::Display for Point {
        fn fmt(&self, f: &mut Formatter) -> Result { write!(f, "p") }
    }

    impl Point {
        // baton: make it const
        /// Makes a point.
        #[inline]
        pub fn new() -> Point { Point { x: helper() } }
        fn norm(&self) -> i32 { self.x.abs()$0 }
    }
}
trait Shape { fn area(&self) -> f64; }
enum Kind { Round, Square }
macro_rules! square { () => {} }
const LIMIT: u32 = 3;
fn helper() -> i32 { shapes::Point::new().norm() }
"#,
        expect![[r#"
            tags:
            def Module shapes L1 `mod shapes { ⏎`
            def Struct Point L2 `pub struct Point { x: i32 }`
            def Field x L2 `x: i32`
            ref TypeAlias Display L4
            ref TypeAlias Point L4
            def Method fmt L5 `fn fmt(&self, f: &mut Formatter) -> Resu…`
            ref TypeAlias Formatter L5
            ref TypeAlias Result L5
            ref Macro write L5
            ref TypeAlias Point L8
            def Method new L12 `pub fn new() -> Point { Point { x: helpe…`
            ref TypeAlias Point L12
            ref TypeAlias Point L12
            ref Function helper L12
            def Method norm L13 `fn norm(&self) -> i32 { self.x.abs() }`
            ref Method abs L13
            def Trait Shape L16 `trait Shape { fn area(&self) -> f64; }`
            def Method area L16 `fn area(&self) -> f64;`
            def Enum Kind L17 `enum Kind { Round, Square }`
            def EnumMember Round L17 `Round`
            def EnumMember Square L17 `Square`
            def Macro square L18 `macro_rules! square { () => {} }`
            def Constant LIMIT L19 `const LIMIT: u32 = 3;`
            def Function helper L20 `fn helper() -> i32 { shapes::Point::new(…`
            ref Function new L20
            ref Method norm L20
            outline:
            Module shapes `mod shapes { ⏎`
              Struct Point `pub struct Point { x: i32 }`
                Field x `x: i32`
              Impl impl std::fmt::Display for Point `impl std::fmt::Display for Point { ⏎`
                Method fmt `fn fmt(&self, f: &mut Formatter) -> Resu…`
              Impl impl Point `impl Point { ⏎`
                Method new `pub fn new() -> Point { Point { x: helpe…`
                Method norm `fn norm(&self) -> i32 { self.x.abs() }`
            Trait Shape `trait Shape { fn area(&self) -> f64; }`
              Method area `fn area(&self) -> f64;`
            Enum Kind `enum Kind { Round, Square }`
              EnumMember Round `Round`
              EnumMember Square `Square`
            Macro square `macro_rules! square { () => {} }`
            Constant LIMIT `const LIMIT: u32 = 3;`
            Function helper `fn helper() -> i32 { shapes::Point::new(…`
            scope: Method Some("norm") `fn norm(&self) -> i32 { self.x.abs() }`
            after marker "make it const":
            /// Makes a point.
                    #[inline]
                    pub fn new() -> Point { Point { x: helper() } }
        "#]],
    );
}

#[test]
fn python() {
    check(
        Language::Python,
        r#"
import os
LIMIT = 3

class Greeter(Base):
    greeting = "hi"

    def __init__(self, name):
        self.name = name

    @staticmethod
    def shout(text: Text):
        return text.upper()$0

# baton: add type hints
def main():
    Greeter("x").shout(helper())
"#,
        expect![[r#"
            tags:
            def Constant LIMIT L2 `LIMIT = 3`
            def Class Greeter L4 `class Greeter(Base): ⏎`
            ref Class Base L4
            def Field greeting L5 `greeting = "hi"`
            def Method __init__ L7 `def __init__(self, name): ⏎`
            ref Function staticmethod L10
            def Method shout L11 `@staticmethod ⏎`
            ref TypeAlias Text L11
            ref Method upper L12
            def Function main L15 `def main(): ⏎`
            ref Function Greeter L16
            ref Method shout L16
            ref Function helper L16
            outline:
            Constant LIMIT `LIMIT = 3`
            Class Greeter `class Greeter(Base): ⏎`
              Field greeting `greeting = "hi"`
              Method __init__ `def __init__(self, name): ⏎`
              Method shout `@staticmethod ⏎`
            Function main `def main(): ⏎`
            scope: Method Some("shout") `@staticmethod ⏎`
            after marker "add type hints":
            def main():
                Greeter("x").shout(helper())
        "#]],
    );
}

#[test]
fn typescript() {
    check(
        Language::TypeScript,
        r#"
interface Shape { area(): number; }
type Id = string;
enum Color { Red, Green = 2 }
namespace Geometry { export const origin = 0; }
export class Circle extends Base implements Shape {
    radius: number = 1;
    constructor(r: number) { super(); this.radius = r; }
    area(): number { return Math.PI * square(this.radius)$0; }
}
// baton: make it generic
export function square(x: number): number { return x * x; }
const double = (x: number) => x * 2;
new Circle(2).area();
"#,
        expect![[r#"
            tags:
            def Interface Shape L1 `interface Shape { area(): number; }`
            def Method area L1 `area(): number`
            def TypeAlias Id L2 `type Id = string;`
            def Enum Color L3 `enum Color { Red, Green = 2 }`
            def EnumMember Red L3 `Red`
            def EnumMember Green L3 `Green = 2`
            def Namespace Geometry L4 `namespace Geometry { export const origin…`
            def Class Circle L5 `class Circle extends Base implements Sha… ⏎`
            ref Class Base L5
            ref TypeAlias Shape L5
            def Field radius L6 `radius: number = 1`
            def Constructor constructor L7 `constructor(r: number) { super(); this.r…`
            def Method area L8 `area(): number { return Math.PI * square…`
            ref Function square L8
            def Function square L11 `function square(x: number): number { ret…`
            def Function double L12 `double = (x: number) => x * 2`
            ref Class Circle L13
            ref Method area L13
            outline:
            Interface Shape `interface Shape { area(): number; }`
              Method area `area(): number`
            TypeAlias Id `type Id = string;`
            Enum Color `enum Color { Red, Green = 2 }`
              EnumMember Red `Red`
              EnumMember Green `Green = 2`
            Namespace Geometry `namespace Geometry { export const origin…`
            Class Circle `class Circle extends Base implements Sha… ⏎`
              Field radius `radius: number = 1`
              Constructor constructor `constructor(r: number) { super(); this.r…`
              Method area `area(): number { return Math.PI * square…`
            Function square `function square(x: number): number { ret…`
            Function double `double = (x: number) => x * 2`
            scope: Method Some("area") `area(): number { return Math.PI * square…`
            after marker "make it generic":
            export function square(x: number): number { return x * x; }
        "#]],
    );
}

#[test]
fn tsx() {
    check(
        Language::Tsx,
        r#"
interface Props { title: string }
export class Panel extends Component<Props> {
    render() { return <div>{format(this.props.title)$0}</div>; }
}
/* baton: memoize this */
export const Header = (props: Props) => <h1>{props.title}</h1>;
function format(text: string): string { return text.trim(); }
"#,
        expect![[r#"
            tags:
            def Interface Props L1 `interface Props { title: string }`
            def Property title L1 `title: string`
            def Class Panel L2 `class Panel extends Component<Props> { ⏎`
            ref Class Component L2
            ref TypeAlias Props L2
            def Method render L3 `render() { return <div>{format(this.prop…`
            ref Function format L3
            def Function Header L6 `Header = (props: Props) => <h1>{props.ti…`
            ref TypeAlias Props L6
            def Function format L7 `function format(text: string): string { …`
            ref Method trim L7
            outline:
            Interface Props `interface Props { title: string }`
              Property title `title: string`
            Class Panel `class Panel extends Component<Props> { ⏎`
              Method render `render() { return <div>{format(this.prop…`
            Function Header `Header = (props: Props) => <h1>{props.ti…`
            Function format `function format(text: string): string { …`
            scope: Method Some("render") `render() { return <div>{format(this.prop…`
            after marker "memoize this":
            export const Header = (props: Props) => <h1>{props.title}</h1>;
        "#]],
    );
}

#[test]
fn javascript() {
    check(
        Language::JavaScript,
        r#"
class Counter extends EventEmitter {
  #count = 0;
  constructor() { super(); }
  increment() { this.#count += 1; this.emit("change"$0); }
}
// baton: use an arrow function
function makeCounter() { return new Counter(); }
const reset = function () { counter.reset(); };
module.exports = { makeCounter, log: (x) => console.log(x) };
"#,
        expect![[r#"
            tags:
            def Class Counter L1 `class Counter extends EventEmitter { ⏎`
            ref Class EventEmitter L1
            def Constructor constructor L3 `constructor() { super(); }`
            def Method increment L4 `increment() { this.#count += 1; this.emi…`
            ref Method emit L4
            def Function makeCounter L7 `function makeCounter() { return new Coun…`
            ref Class Counter L7
            def Function reset L8 `reset = function () { counter.reset(); }`
            ref Method reset L8
            def Function log L9 `log: (x) => console.log(x)`
            ref Method log L9
            outline:
            Class Counter `class Counter extends EventEmitter { ⏎`
              Constructor constructor `constructor() { super(); }`
              Method increment `increment() { this.#count += 1; this.emi…`
            Function makeCounter `function makeCounter() { return new Coun…`
            Function reset `reset = function () { counter.reset(); }`
            Function log `log: (x) => console.log(x)`
            scope: Method Some("increment") `increment() { this.#count += 1; this.emi…`
            after marker "use an arrow function":
            function makeCounter() { return new Counter(); }
        "#]],
    );
}

#[test]
fn go() {
    check(
        Language::Go,
        r#"
package shapes

const Limit = 3

type Shape interface { Area() float64 }

type Circle struct { Radius float64 }

// baton: handle negative radius
func (c Circle) Area() float64 {
	return math.Pi * square(c.Radius)$0
}

func square(x float64) float64 { return x * x }

func main() { fmt.Println(Circle{Radius: 2}.Area()) }
"#,
        expect![[r#"
            tags:
            def Module shapes L1 `package shapes`
            def Constant Limit L3 `Limit = 3`
            def Interface Shape L5 `Shape interface { Area() float64 }`
            def Method Area L5 `Area() float64`
            ref TypeAlias float64 L5
            def Struct Circle L7 `Circle struct { Radius float64 }`
            def Field Radius L7 `Radius float64`
            ref TypeAlias float64 L7
            ref TypeAlias Circle L10
            def Method Area L10 `func (c Circle) Area() float64 { ⏎`
            ref TypeAlias float64 L10
            ref Function square L11
            def Function square L14 `func square(x float64) float64 { return …`
            ref TypeAlias float64 L14
            ref TypeAlias float64 L14
            def Function main L16 `func main() { fmt.Println(Circle{Radius:…`
            ref Method Println L16
            ref TypeAlias Circle L16
            ref Method Area L16
            outline:
            Module shapes `package shapes`
            Constant Limit `Limit = 3`
            Interface Shape `Shape interface { Area() float64 }`
              Method Area `Area() float64`
            Struct Circle `Circle struct { Radius float64 }`
              Field Radius `Radius float64`
            Method Area `func (c Circle) Area() float64 { ⏎`
            Function square `func square(x float64) float64 { return …`
            Function main `func main() { fmt.Println(Circle{Radius:…`
            scope: Method Some("Area") `func (c Circle) Area() float64 { ⏎`
            after marker "handle negative radius":
            func (c Circle) Area() float64 {
            	return math.Pi * square(c.Radius)
            }
        "#]],
    );
}

#[test]
fn c() {
    check(
        Language::C,
        r#"
#include <stdio.h>
#define MAX 10
struct point { int x; int y; };
typedef struct point point_t;
enum color { RED, GREEN };
int counter = 0;
static int square(int x);

/* baton: check for overflow */
static int square(int x) { return x * x; }

char *name(point_t *p) { return "p"; }

int main(void) {
    printf("%d\n", square(MAX)$0);
    return 0;
}
"#,
        expect![[r#"
            tags:
            def Macro MAX L2 `#define MAX 10 ⏎`
            def Struct point L3 `struct point { int x; int y; }`
            def Field x L3 `int x;`
            def Field y L3 `int y;`
            ref TypeAlias point L4
            def TypeAlias point_t L4 `typedef struct point point_t;`
            def Enum color L5 `enum color { RED, GREEN }`
            def EnumMember RED L5 `RED`
            def EnumMember GREEN L5 `GREEN`
            def Variable counter L6 `int counter = 0;`
            def Function square L7 `static int square(int x);`
            def Function square L10 `static int square(int x) { return x * x;…`
            def Function name L12 `char *name(point_t *p) { return "p"; }`
            ref TypeAlias point_t L12
            def Function main L14 `int main(void) { ⏎`
            ref Function printf L15
            ref Function square L15
            outline:
            Macro MAX `#define MAX 10 ⏎`
            Struct point `struct point { int x; int y; }`
              Field x `int x;`
              Field y `int y;`
            TypeAlias point_t `typedef struct point point_t;`
            Enum color `enum color { RED, GREEN }`
              EnumMember RED `RED`
              EnumMember GREEN `GREEN`
            Variable counter `int counter = 0;`
            Function square `static int square(int x);`
            Function square `static int square(int x) { return x * x;…`
            Function name `char *name(point_t *p) { return "p"; }`
            Function main `int main(void) { ⏎`
            scope: Function Some("main") `int main(void) { ⏎`
            after marker "check for overflow":
            static int square(int x) { return x * x; }
        "#]],
    );
}

#[test]
fn cpp() {
    check(
        Language::Cpp,
        r#"
namespace geometry {
class Circle : public Shape {
public:
    Circle(double r) : radius(r) {}
    double area() const { return square(radius)$0; }
    void scale(double factor);
private:
    double radius;
};
// baton: clamp the factor
void Circle::scale(double factor) { radius *= factor; }
}
double square(double x) { return x * x; }
int main() { auto c = new geometry::Circle(1.0); std::cout << c->area(); }
"#,
        expect![[r#"
            tags:
            def Namespace geometry L1 `namespace geometry { ⏎`
            def Class Circle L2 `class Circle : public Shape { ⏎`
            ref TypeAlias Shape L2
            def Constructor Circle L4 `Circle(double r) : radius(r) {}`
            def Method area L5 `double area() const { return square(radi…`
            ref Function square L5
            def Method scale L6 `void scale(double factor);`
            def Field radius L8 `double radius;`
            def Method scale L11 `void Circle::scale(double factor) { radi…`
            def Function square L13 `double square(double x) { return x * x; …`
            def Function main L14 `int main() { auto c = new geometry::Circ…`
            ref TypeAlias Circle L14
            ref Function area L14
            outline:
            Namespace geometry `namespace geometry { ⏎`
              Class Circle `class Circle : public Shape { ⏎`
                Constructor Circle `Circle(double r) : radius(r) {}`
                Method area `double area() const { return square(radi…`
                Method scale `void scale(double factor);`
                Field radius `double radius;`
              Method scale `void Circle::scale(double factor) { radi…`
            Function square `double square(double x) { return x * x; …`
            Function main `int main() { auto c = new geometry::Circ…`
            scope: Method Some("area") `double area() const { return square(radi…`
            after marker "clamp the factor":
            void Circle::scale(double factor) { radius *= factor; }
        "#]],
    );
}

#[test]
fn java() {
    check(
        Language::Java,
        r#"
package com.example;

public class Circle extends Shape implements Comparable<Circle> {
    private static final double LIMIT = 3;
    private double radius;

    public Circle(double radius) { this.radius = radius; }

    // baton: cache the result
    @Override
    public double area() { return Math.PI * square(radius)$0; }

    enum Unit { METRIC, IMPERIAL }
}

interface Shape { double area(); }
"#,
        expect![[r#"
            tags:
            def Module com.example L1 `package com.example;`
            def Class Circle L3 `public class Circle extends Shape implem… ⏎`
            ref Class Shape L3
            ref TypeAlias Comparable L3
            ref TypeAlias Circle L3
            def Field LIMIT L4 `private static final double LIMIT = 3;`
            def Field radius L5 `private double radius;`
            def Constructor Circle L7 `public Circle(double radius) { this.radi…`
            def Method area L11 `@Override ⏎`
            ref Method square L11
            def Enum Unit L13 `enum Unit { METRIC, IMPERIAL }`
            def EnumMember METRIC L13 `METRIC`
            def EnumMember IMPERIAL L13 `IMPERIAL`
            def Interface Shape L16 `interface Shape { double area(); }`
            def Method area L16 `double area();`
            outline:
            Module com.example `package com.example;`
            Class Circle `public class Circle extends Shape implem… ⏎`
              Field LIMIT `private static final double LIMIT = 3;`
              Field radius `private double radius;`
              Constructor Circle `public Circle(double radius) { this.radi…`
              Method area `@Override ⏎`
              Enum Unit `enum Unit { METRIC, IMPERIAL }`
                EnumMember METRIC `METRIC`
                EnumMember IMPERIAL `IMPERIAL`
            Interface Shape `interface Shape { double area(); }`
              Method area `double area();`
            scope: Method Some("area") `@Override ⏎`
            after marker "cache the result":
            @Override
                public double area() { return Math.PI * square(radius); }
        "#]],
    );
}

#[test]
fn ruby() {
    check(
        Language::Ruby,
        r#"
module Shapes
  LIMIT = 3

  class Circle < Shape
    def initialize(radius)
      @radius = radius
    end

    # baton: memoize
    def area
      Math::PI * square(@radius)$0
    end

    def self.unit
      Circle.new(1)
    end
  end
end
"#,
        expect![[r#"
            tags:
            def Module Shapes L1 `module Shapes ⏎`
            def Constant LIMIT L2 `LIMIT = 3`
            def Class Circle L4 `class Circle < Shape ⏎`
            ref Class Shape L4
            def Method initialize L5 `def initialize(radius) ⏎`
            def Method area L10 `def area ⏎`
            ref Function square L11
            def Method unit L14 `def self.unit ⏎`
            ref Class Circle L15
            ref Function new L15
            outline:
            Module Shapes `module Shapes ⏎`
              Constant LIMIT `LIMIT = 3`
              Class Circle `class Circle < Shape ⏎`
                Method initialize `def initialize(radius) ⏎`
                Method area `def area ⏎`
                Method unit `def self.unit ⏎`
            scope: Method Some("area") `def area ⏎`
            after marker "memoize":
            def area
                  Math::PI * square(@radius)
                end
        "#]],
    );
}

#[test]
fn lua() {
    check(
        Language::Lua,
        r#"
local M = {}

-- baton: validate the radius
function M.area(radius)
  return math.pi * square(radius)$0
end

function M:describe()
  print(self:name())
end

local function square(x) return x * x end

local helpers = { double = function(x) return x * 2 end }

return M
"#,
        expect![[r#"
            tags:
            def Variable M L1 `local M = {}`
            def Function area L4 `function M.area(radius) ⏎`
            ref Function square L5
            def Method describe L8 `function M:describe() ⏎`
            ref Function print L9
            ref Method name L9
            def Function square L12 `local function square(x) return x * x en…`
            def Variable helpers L14 `local helpers = { double = function(x) r…`
            def Function double L14 `double = function(x) return x * 2 end`
            outline:
            Variable M `local M = {}`
            Function area `function M.area(radius) ⏎`
            Method describe `function M:describe() ⏎`
            Function square `local function square(x) return x * x en…`
            Variable helpers `local helpers = { double = function(x) r…`
              Function double `double = function(x) return x * 2 end`
            scope: Function Some("area") `function M.area(radius) ⏎`
            after marker "validate the radius":
            function M.area(radius)
              return math.pi * square(radius)
            end
        "#]],
    );
}

#[test]
fn bash() {
    check(
        Language::Bash,
        r#"
#!/usr/bin/env bash
LIMIT=3
export NAME="baton"

# baton: add error handling
build() {
  cargo build "$@"$0
}

function deploy {
  build --release
  echo "done"
}

deploy
"#,
        expect![[r#"
            tags:
            def Variable LIMIT L2 `LIMIT=3`
            def Variable NAME L3 `export NAME="baton"`
            def Function build L6 `build() { ⏎`
            ref Function cargo L7
            def Function deploy L10 `function deploy { ⏎`
            ref Function build L11
            ref Function echo L12
            ref Function deploy L15
            outline:
            Variable LIMIT `LIMIT=3`
            Variable NAME `export NAME="baton"`
            Function build `build() { ⏎`
            Function deploy `function deploy { ⏎`
            scope: Function Some("build") `build() { ⏎`
            after marker "add error handling":
            build() {
              cargo build "$@"
            }
        "#]],
    );
}

#[test]
fn scope_at_top_level_and_of_a_whole_selection() {
    check_scope(
        Language::Rust,
        "fn main() {}\n$0\nfn other() {}\n",
        expect!["none"],
    );
    // A selection that is exactly a function is enclosed by what is around the function.
    check_scope(
        Language::Rust,
        "impl Point {\n    <sel>fn new() -> Point { Point }</sel>\n}\n",
        expect![[r#"Impl Some("impl Point") `impl Point { ⏎`"#]],
    );
    check_scope(
        Language::Python,
        "class A:\n    def f(self):\n        <sel>x = 1\n        y = 2</sel>\n",
        expect![[r#"Method Some("f") `def f(self): ⏎`"#]],
    );
}
