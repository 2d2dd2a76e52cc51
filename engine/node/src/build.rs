//! Building: evaluate a node description and write it into the store as a
//! generation, under the session's lock (a `gc` running between writing
//! the objects and recording the generation could delete objects this
//! build found already present).

use archy_build::BuildReport;

use crate::evaluate::{self, Source};
use crate::{NodeError, Session};

impl Session<'_> {
    /// Evaluates `source` and builds it: the generation it makes (or finds
    /// already built).
    pub fn build(&self, source: &Source) -> Result<BuildReport, NodeError> {
        self.build_as(source, &source.name())
    }

    /// [`Session::build`], recording `name` as where the description came
    /// from (an OTA release names itself rather than its unpacked folder).
    pub(crate) fn build_as(&self, source: &Source, name: &str) -> Result<BuildReport, NodeError> {
        self.build_from(source, name, &[])
    }

    /// [`Session::build_as`], fetching software after `mirrors` (a
    /// release's mirrors, which keep it by hash).
    pub(crate) fn build_from(
        &self,
        source: &Source,
        name: &str,
        mirrors: &[String],
    ) -> Result<BuildReport, NodeError> {
        let evaluation = evaluate::evaluate(source, self.state_dir(), self.node.eval_limits())?;
        let origin = crate::software::origin(&source.node, mirrors);
        Ok(archy_build::build_with(
            &self.store,
            &evaluation.graph,
            name,
            &origin,
        )?)
    }
}
