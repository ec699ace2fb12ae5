"""Skills: the SkillTree and the Missing-Skill-Profile (see `teachloop.skills.profile`)."""

from teachloop.skills.tree import ROOT, SkillTree, SkillTreeError

__all__ = ["ROOT", "SkillTree", "SkillTreeError"]
