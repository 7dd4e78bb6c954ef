//! Running compiled expressions: the ZEN VM under a panic guard, hoisted credit-function calls, and unary tests.

use super::*;
use functions::CreditFunction;
use rust_decimal::Decimal;

/// Runs the ZEN VM, turning an error, or a panic inside the VM, into a message: a defect in a
/// third-party interpreter must not take a decision service down.
pub(crate) fn guard_vm<T>(
    run: impl FnOnce() -> Result<T, zen_expression::IsolateError>,
) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => result.map_err(|e| describe_isolate_error(&e)),
        Err(_) => Err("the expression interpreter failed on this expression".into()),
    }
}

pub(crate) fn describe_isolate_error(error: &zen_expression::IsolateError) -> String {
    let text = error.to_string();
    if text.is_empty() {
        format!("{error:?}")
    } else {
        text
    }
}

impl Expr {
    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Root names the expression reads (`a` in `a.b + 1`), sorted, without duplicates.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// The most steps one evaluation can take (worst case, from the syntax tree).
    pub fn step_bound(&self) -> u64 {
        self.steps
    }

    /// Evaluates against the frame's context.
    #[inline]
    pub fn eval(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Value, ExprError> {
        self.eval_variable(frame, lists).map(Value)
    }

    /// [`Expr::eval`] in the evaluator's own value type.
    pub(crate) fn eval_variable(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Variable, ExprError> {
        match &self.shortcut {
            Shortcut::Constant(c) => Ok(c.to_variable()),
            Shortcut::Call => self.hoisted[0]
                .evaluate(frame, lists)
                .map_err(|reason| self.eval_error(reason)),
            Shortcut::Fast(fast) => {
                self.run_hoisted(frame, lists)?;
                match fast.eval(frame) {
                    Some(value) => Ok(value),
                    None => self.run_program(frame),
                }
            }
            Shortcut::None => self.eval_with_vm(frame, lists),
        }
    }

    /// Evaluates a condition (a rule's or a step's `when`). A boolean or null comes back without
    /// a value built for it; anything else comes back as the value, for the caller's message.
    pub fn eval_truth(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Truth, ExprError> {
        if let Shortcut::Fast(fast) = &self.shortcut {
            if self.hoisted.is_empty() {
                if let Some(truth) = fast.truth(frame) {
                    return Ok(truth);
                }
            }
        }
        let value = self.eval(frame, lists)?;
        Ok(match value.kind() {
            ValueRef::Bool(true) => Truth::True,
            ValueRef::Bool(false) => Truth::False,
            ValueRef::Null => Truth::Null,
            _ => Truth::Other(value),
        })
    }

    /// The constant value of an expression that reads nothing, if it is a scalar.
    pub fn constant(&self) -> Option<&Constant> {
        match &self.shortcut {
            Shortcut::Constant(c) => Some(c),
            _ => None,
        }
    }

    /// Evaluates with the ZEN VM, bypassing shortcuts; used to check the two agree.
    pub fn eval_with_vm(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Variable, ExprError> {
        self.run_hoisted(frame, lists)?;
        self.run_program(frame)
    }

    fn eval_error(&self, reason: String) -> ExprError {
        ExprError::Eval {
            text: self.text.to_string(),
            reason,
        }
    }

    /// Evaluates the hoisted credit-function calls into their slots.
    fn run_hoisted(&self, frame: &mut Frame, lists: &NamedLists) -> Result<(), ExprError> {
        for call in &self.hoisted {
            let value = call
                .evaluate(frame, lists)
                .map_err(|reason| self.eval_error(reason))?;
            frame.set_variable(call.slot, value);
        }
        Ok(())
    }

    /// Runs the ZEN program. A list it returns longer than the limit an expression may build
    /// is an error, so that the lists every later expression reads stay bounded (constants,
    /// credit functions and the direct evaluator return scalars or values already in the
    /// frame, so only the VM can build a new list).
    fn run_program(&self, frame: &mut Frame) -> Result<Variable, ExprError> {
        frame.sync(&self.vm_references);
        let (scope, vm) = (&frame.scope, &mut frame.vm);
        let value = guard_vm(|| self.program.evaluate_with_scope(scope, vm))
            .map_err(|reason| self.eval_error(reason))?;
        if let Variable::Array(items) = &value {
            let length = items.borrow().len() as u64;
            if length > self.max_list_items {
                return Err(self.eval_error(format!(
                    "built a list of {} items; an expression may build at most {} (limits.list_items)",
                    budget::group(length),
                    budget::group(self.max_list_items)
                )));
            }
        }
        Ok(value)
    }
}

impl HoistedCall {
    fn evaluate(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Variable, String> {
        use functions as f;
        // Credit functions take at most four arguments: kept on the stack, not allocated.
        let mut values: smallvec::SmallVec<[Variable; 4]> = smallvec::SmallVec::new();
        for argument in &self.arguments {
            values.push(
                argument
                    .eval_variable(frame, lists)
                    .map_err(|e| e.to_string())?,
            );
        }
        let name = self.function.name();
        let number = |k: usize, argument: &str| -> Result<Option<Decimal>, String> {
            match &values[k] {
                Variable::Number(n) => Ok(Some(*n)),
                Variable::Null => Ok(None),
                other => Err(format!(
                    "{name}: {argument} must be a number, got {}",
                    other.type_name()
                )),
            }
        };
        let date = |k: usize, argument: &str| -> Result<Option<chrono::NaiveDate>, String> {
            match &values[k] {
                Variable::String(s) => f::parse_date(s, argument).map(Some),
                Variable::Null => Ok(None),
                other => Err(format!(
                    "{name}: {argument} must be a date string, got {}",
                    other.type_name()
                )),
            }
        };
        let number_result = |r: Result<Decimal, String>| -> Result<Variable, String> {
            r.map(Variable::Number).map_err(|e| format!("{name}: {e}"))
        };
        // A missing (null) argument gives a null result, as arithmetic on null does in ZEN:
        // rules can then test for it instead of the evaluation failing.
        Ok(match self.function {
            CreditFunction::AnnuityPayment | CreditFunction::AffordablePrincipal => {
                let (Some(rate), Some(periods), Some(amount)) = (
                    number(0, "rate_per_period")?,
                    number(1, "periods")?,
                    number(
                        2,
                        if self.function == CreditFunction::AnnuityPayment {
                            "principal"
                        } else {
                            "payment"
                        },
                    )?,
                ) else {
                    return Ok(Variable::Null);
                };
                if self.function == CreditFunction::AnnuityPayment {
                    number_result(f::annuity_payment(rate, periods, amount))?
                } else {
                    number_result(f::affordable_principal(rate, periods, amount))?
                }
            }
            CreditFunction::MonthsBetween | CreditFunction::AgeYears => {
                let first = if self.function == CreditFunction::AgeYears {
                    "birth_date"
                } else {
                    "from_date"
                };
                let second = if self.function == CreditFunction::AgeYears {
                    "on_date"
                } else {
                    "to_date"
                };
                let (Some(a), Some(b)) = (date(0, first)?, date(1, second)?) else {
                    return Ok(Variable::Null);
                };
                let n = if self.function == CreditFunction::AgeYears {
                    f::age_years(a, b)
                } else {
                    f::months_between(a, b)
                };
                Variable::Number(Decimal::from(n))
            }
            CreditFunction::RoundMoney | CreditFunction::FloorTo => {
                let second = if self.function == CreditFunction::RoundMoney {
                    "places"
                } else {
                    "step"
                };
                let (Some(amount), Some(parameter)) = (number(0, "amount")?, number(1, second)?)
                else {
                    return Ok(Variable::Null);
                };
                if self.function == CreditFunction::RoundMoney {
                    number_result(f::round_money(amount, parameter))?
                } else {
                    number_result(f::floor_to(amount, parameter))?
                }
            }
            CreditFunction::InList => {
                let found = match &values[0] {
                    Variable::String(s) => lists.contains(self.list_index, s),
                    Variable::Number(n) => {
                        lists.contains(self.list_index, &n.normalize().to_string())
                    }
                    Variable::Null => false,
                    other => {
                        return Err(format!(
                            "in_list: value must be a string or number, got {}",
                            other.type_name()
                        ))
                    }
                };
                Variable::Bool(found)
            }
        })
    }
}

impl UnaryTest {
    /// Names the cell reads besides `$` (`employment_status` in `employment_status == "x"`):
    /// the compiler resolves them like any expression's, so a misspelt one is an error.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// The most steps one test can take (worst case, from the syntax tree).
    pub fn step_bound(&self) -> u64 {
        self.steps
    }

    /// The cell's text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The analysed form, when the cell is one a table can index.
    pub fn simple(&self) -> Option<&SimpleTest> {
        self.simple.as_ref()
    }

    /// Tests `value`; the rest of the frame's context is visible to the cell. A cell that
    /// cannot compare the value at all (a string against `< 0`, say) does not match, as the
    /// analysed forms behave.
    #[inline]
    pub fn test(&self, value: &Value, frame: &mut Frame) -> bool {
        if let Some(simple) = &self.simple {
            return simple.matches_variable(&value.0);
        }
        self.test_variable_with_zen(&value.0, frame)
            .unwrap_or(false)
    }

    /// Tests with ZEN alone, bypassing the analysed form; used to check the two agree.
    pub fn test_with_zen(&self, value: &Value, frame: &mut Frame) -> Result<bool, ExprError> {
        self.test_variable_with_zen(&value.0, frame)
    }

    fn test_variable_with_zen(
        &self,
        value: &Variable,
        frame: &mut Frame,
    ) -> Result<bool, ExprError> {
        let Some(program) = &self.program else {
            return Ok(true);
        };
        // A cell may read any name besides `$`.
        frame.sync_all();
        frame.scope.set_local(Variable::dollar_key(), value.clone());
        let (scope, vm) = (&frame.scope, &mut frame.vm);
        guard_vm(|| program.evaluate_with_scope(scope, vm)).map_err(|reason| ExprError::Eval {
            text: self.text.to_string(),
            reason,
        })
    }
}
